use std::sync::{Arc, Mutex};

use super::*;
use crate::api_key::InMemoryKeyStore;

#[tokio::test]
async fn every_invalidation_hook_hears_of_every_change() {
    let heard: Arc<Mutex<Vec<(&str, KeyDigest)>>> = Arc::default();
    let hook = |name: &'static str| -> InvalidateHook {
        let heard = Arc::clone(&heard);
        Arc::new(move |digest: &KeyDigest| heard.lock().unwrap().push((name, *digest)))
    };
    let keys = ApiKeys::builder(InMemoryKeyStore::new())
        .on_invalidate(hook("redis"))
        .on_invalidate(hook("app cache"))
        .build();
    let created = keys.generate(NewKey::new("app", "App")).await.unwrap();
    assert!(
        heard.lock().unwrap().is_empty(),
        "a fresh key is not announced"
    );
    keys.revoke(created.record().id()).await.unwrap();
    let digest = *created.record().digest();
    assert_eq!(
        *heard.lock().unwrap(),
        [("redis", digest), ("app cache", digest)],
        "both hooks, in the order added"
    );
}
