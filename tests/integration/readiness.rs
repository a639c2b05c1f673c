//! Backpressure and clone-and-swap, checked with tower-test's mock: the mock panics if a clone
//! that was never made ready is called, which is what a missing swap would do.

use http::{Request, Response};
use tokio_test_shim::{assert_pending, assert_ready_ok};
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
use tollgate::identity::AppIdentity;
use tower_test::mock;

mod tokio_test_shim {
    macro_rules! assert_pending {
        ($e:expr) => {
            assert!($e.is_pending(), "expected Pending")
        };
    }
    macro_rules! assert_ready_ok {
        ($e:expr) => {
            match $e {
                std::task::Poll::Ready(Ok(v)) => v,
                other => panic!("expected Ready(Ok), got {:?}", other.map(|r| r.is_ok())),
            }
        };
    }
    pub(crate) use {assert_pending, assert_ready_ok};
}

fn request(key: &str) -> Request<String> {
    Request::builder()
        .header("x-api-key", key)
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn readiness_is_the_inner_services_and_the_ready_service_is_the_one_called() {
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let key = keys.generate(NewKey::new("app-1", "A")).await.unwrap();
    let key = key.key().expose().to_owned();
    let (mut service, mut handle) =
        mock::spawn_layer::<Request<String>, Response<String>, _>(ApiKeyLayer::new(keys));

    // poll_ready reports the inner service's readiness, no more and no less.
    handle.allow(0);
    assert_pending!(service.poll_ready());
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());

    // An uncached key takes the async path: the readied inner service must travel with the
    // request (a call on the fresh clone left behind would panic inside the mock).
    let response = service.call(request(&key));
    let answer = async {
        let (seen, send) = handle.next_request().await.unwrap();
        assert_eq!(
            seen.extensions().get::<AppIdentity>().unwrap().app_id(),
            "app-1"
        );
        send.send_response(Response::new("hello".to_owned()));
    };
    let (response, ()) = tokio::join!(response, answer);
    assert_eq!(response.unwrap().status(), 200);

    // The cached key takes the synchronous path and calls the readied service directly.
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let response = service.call(request(&key));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(Response::new("again".to_owned()));
    assert_eq!(response.await.unwrap().status(), 200);

    // A rejected request never reaches the inner service.
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let response = service.call(request("tg_wrong")).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(handle.next_request().now_or_never_is_none());
}

trait NowOrNever {
    fn now_or_never_is_none(self) -> bool;
}

impl<F: Future> NowOrNever for F {
    fn now_or_never_is_none(self) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(self);
        future.as_mut().poll(&mut cx).is_pending()
    }
}
