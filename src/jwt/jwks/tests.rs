use std::sync::atomic::{AtomicUsize, Ordering};

use super::document::max_age;
use super::*;

/// A fetcher serving a fixed document with `max-age=120`, counting fetches.
struct Fixed(Arc<AtomicUsize>);

impl JwksFetcher for Fixed {
    type Future = std::future::Ready<Result<JwksDocument, FetchError>>;

    fn fetch(&self) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(JwksDocument::new(
            r#"{"keys":[{"kty":"oct","kid":"a","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}"#,
        )
        .with_max_age(Some(Duration::from_secs(120)))))
    }
}

#[tokio::test(start_paused = true)]
async fn background_refresh_follows_max_age_and_stops_with_the_source() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let source = JwksSource::builder(Fixed(Arc::clone(&fetches)))
        .refresh_floor(Duration::from_secs(60))
        .trust_symmetric_keys()
        .build();
    let task = source.spawn_refresh();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(source.keys().len(), 1);
    tokio::time::sleep(Duration::from_secs(118)).await; // t = 119 s
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(2)).await; // t = 121 s
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    drop(source);
    tokio::time::sleep(Duration::from_secs(240)).await;
    assert!(task.is_finished(), "the task ends once the source is gone");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn symmetric_keys_only_when_trusted() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let source = JwksSource::builder(Fixed(Arc::clone(&fetches))).build();
    source.refresh().await.unwrap();
    assert_eq!(source.keys().len(), 0, "the oct key is skipped by default");
}

#[test]
fn cache_control_max_age() {
    let cases = [
        ("max-age=300", Some(300)),
        ("public, max-age=60, must-revalidate", Some(60)),
        ("MAX-AGE=7", Some(7)),
        ("no-store", Some(0)),
        ("public", None),
        ("max-age=abc", None),
    ];
    for (value, expected) in cases {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CACHE_CONTROL, value.parse().unwrap());
        assert_eq!(
            max_age(&headers),
            expected.map(Duration::from_secs),
            "{value}"
        );
    }
}
