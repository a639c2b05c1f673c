//! The `orders.Orders` gRPC service's messages and method paths, written by hand with
//! `prost` derives so the examples build without `protoc`. The equivalent `.proto`:
//!
//! ```proto
//! syntax = "proto3";
//! package orders;
//! service Orders {
//!   rpc ListOrders(ListOrdersRequest) returns (ListOrdersReply);   // API key
//!   rpc CreateOrder(CreateOrderRequest) returns (Order);           // API key and bearer token
//! }
//! message ListOrdersRequest {}
//! message ListOrdersReply { string app_id = 1; repeated Order orders = 2; }
//! message CreateOrderRequest { string item = 1; uint32 quantity = 2; }
//! message Order { uint64 id = 1; string item = 2; uint32 quantity = 3; string app_id = 4; string user_id = 5; }
//! ```
//!
//! Shared by `tonic_orders`, `tonic_client` and the integration test through `#[path]`.
#![allow(dead_code, unreachable_pub)]

/// The service's full name.
pub const SERVICE: &str = "orders.Orders";
/// `ListOrders`'s path.
pub const LIST_ORDERS: &str = "/orders.Orders/ListOrders";
/// `CreateOrder`'s path.
pub const CREATE_ORDER: &str = "/orders.Orders/CreateOrder";

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListOrdersRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListOrdersReply {
    #[prost(string, tag = "1")]
    pub app_id: String,
    #[prost(message, repeated, tag = "2")]
    pub orders: Vec<Order>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateOrderRequest {
    #[prost(string, tag = "1")]
    pub item: String,
    #[prost(uint32, tag = "2")]
    pub quantity: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Order {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub item: String,
    #[prost(uint32, tag = "3")]
    pub quantity: u32,
    #[prost(string, tag = "4")]
    pub app_id: String,
    #[prost(string, tag = "5")]
    pub user_id: String,
}

/// A client for `orders.Orders` over any tonic channel: metadata (the API key, the bearer
/// token) goes on each call, and a rejection comes back as the call's `tonic::Status`.
#[derive(Debug, Clone)]
pub struct OrdersClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl OrdersClient {
    /// Connects to `url` (`http://127.0.0.1:50051`).
    pub async fn connect(url: String) -> Result<Self, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(url)?
            .connect()
            .await?;
        Ok(Self {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// `ListOrders`, sending `metadata`.
    pub async fn list_orders(
        &mut self,
        metadata: &[(&'static str, &str)],
    ) -> Result<ListOrdersReply, tonic::Status> {
        self.call(ListOrdersRequest {}, LIST_ORDERS, metadata).await
    }

    /// `CreateOrder`, sending `metadata`.
    pub async fn create_order(
        &mut self,
        order: CreateOrderRequest,
        metadata: &[(&'static str, &str)],
    ) -> Result<Order, tonic::Status> {
        self.call(order, CREATE_ORDER, metadata).await
    }

    async fn call<Req, Res>(
        &mut self,
        message: Req,
        path: &'static str,
        metadata: &[(&'static str, &str)],
    ) -> Result<Res, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Res: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(message);
        for (name, value) in metadata {
            let value = value
                .parse()
                .map_err(|_| tonic::Status::invalid_argument(format!("bad {name} value")))?;
            request.metadata_mut().insert(*name, value);
        }
        let response = self
            .grpc
            .unary(
                request,
                http::uri::PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await?;
        Ok(response.into_inner())
    }
}
