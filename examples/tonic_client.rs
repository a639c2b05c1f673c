//! Calls `tonic_orders` with an API key and a bearer token sent as metadata, and prints each
//! answer or the `tonic::Status` a guard refused it with.
//!
//! ```text
//! export KEY=tg_…      # printed by tonic_orders
//! export TOKEN=eyJ…    # optional: a token the server's verification key accepts
//! cargo run --example tonic_client --features full
//! ```
//!
//! Settings: `TOLLGATE_GRPC_URL` (default `http://127.0.0.1:50051`), `KEY`, `TOKEN`.
//! Without `KEY` the calls come back `Unauthenticated`; without `TOKEN`, `CreateOrder` does.

#[path = "common/orders_grpc.rs"]
mod orders_grpc;

use orders_grpc::{CreateOrderRequest, OrdersClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let url = var("TOLLGATE_GRPC_URL").unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let key = var("KEY");
    let bearer = var("TOKEN").map(|token| format!("Bearer {token}"));

    let mut metadata = Vec::new();
    if let Some(key) = &key {
        metadata.push(("x-api-key", key.as_str()));
    }
    if let Some(bearer) = &bearer {
        metadata.push(("authorization", bearer.as_str()));
    }

    let mut client = OrdersClient::connect(url).await?;
    match client.list_orders(&metadata).await {
        Ok(reply) => println!(
            "ListOrders: ok, app {}, {} orders",
            reply.app_id,
            reply.orders.len()
        ),
        Err(status) => print_status("ListOrders", &status),
    }
    let order = CreateOrderRequest {
        item: "tea".to_owned(),
        quantity: 2,
    };
    match client.create_order(order, &metadata).await {
        Ok(order) => println!(
            "CreateOrder: ok, order {} for user {} via app {}",
            order.id, order.user_id, order.app_id
        ),
        Err(status) => print_status("CreateOrder", &status),
    }
    Ok(())
}

/// One line per refusal: the code by name and number, and the server's message.
fn print_status(call: &str, status: &tonic::Status) {
    println!(
        "{call}: refused, {:?} ({}): {}",
        status.code(),
        status.code() as i32,
        status.message()
    );
}
