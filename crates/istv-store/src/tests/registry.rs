//! The schema registry's tables on both databases: ids and versions,
//! re-registration, shared ids across subjects, the moved-latest check and
//! the compatibility levels.

use super::*;
use crate::SubjectVersion;

fn v(subject: &str, version: u32, id: u32, schema: &str) -> SubjectVersion {
    SubjectVersion {
        subject: subject.into(),
        version,
        id,
        schema: schema.into(),
    }
}

pub(super) async fn registry_versions_and_ids(store: Store) {
    assert_eq!(store.registry_schema(1).await.unwrap(), None);
    assert!(store.registry_subjects().await.unwrap().is_empty());
    assert_eq!(store.registry_version("a-value", None).await.unwrap(), None);

    let first = store
        .registry_register("a-value", "f1", "S1", None)
        .await
        .unwrap();
    assert_eq!(first, v("a-value", 1, 1, "S1"));
    // The same schema again: the same version and id, nothing added.
    let again = store
        .registry_register("a-value", "f1", "S1", Some(7))
        .await
        .unwrap();
    assert_eq!(again, first);

    let second = store
        .registry_register("a-value", "f2", "S2", Some(1))
        .await
        .unwrap();
    assert_eq!(second, v("a-value", 2, 2, "S2"));
    // A schema of another subject keeps its id; the subject counts from 1.
    let shared = store
        .registry_register("b-value", "f2", "S2", None)
        .await
        .unwrap();
    assert_eq!(shared, v("b-value", 1, 2, "S2"));
    let third = store
        .registry_register("b-value", "f3", "S3", Some(1))
        .await
        .unwrap();
    assert_eq!(third, v("b-value", 2, 3, "S3"));

    assert_eq!(
        store.registry_schema(2).await.unwrap().as_deref(),
        Some("S2")
    );
    assert_eq!(store.registry_schema(4).await.unwrap(), None);
    assert_eq!(
        store.registry_subjects().await.unwrap(),
        ["a-value", "b-value"]
    );
    assert_eq!(
        store.registry_history("a-value").await.unwrap(),
        [v("a-value", 1, 1, "S1"), v("a-value", 2, 2, "S2")]
    );
    assert!(store.registry_history("c-value").await.unwrap().is_empty());
    assert_eq!(
        store.registry_version("a-value", None).await.unwrap(),
        Some(v("a-value", 2, 2, "S2"))
    );
    assert_eq!(
        store.registry_version("a-value", Some(1)).await.unwrap(),
        Some(v("a-value", 1, 1, "S1"))
    );
    assert_eq!(
        store.registry_version("a-value", Some(3)).await.unwrap(),
        None
    );
    assert_eq!(
        store.registry_lookup("b-value", "f2").await.unwrap(),
        Some(v("b-value", 1, 2, "S2"))
    );
    assert_eq!(store.registry_lookup("b-value", "f1").await.unwrap(), None);
}

pub(super) async fn registry_refuses_a_check_against_a_stale_latest(store: Store) {
    store
        .registry_register("a-value", "f1", "S1", None)
        .await
        .unwrap();
    // Checked against "no version" or version 2: the latest is 1.
    for stale in [None, Some(2)] {
        assert!(matches!(
            store.registry_register("a-value", "f2", "S2", stale).await,
            Err(StoreError::RegistryMoved(s)) if s == "a-value"
        ));
    }
    assert_eq!(store.registry_history("a-value").await.unwrap().len(), 1);
    // Nothing was stored by the refused attempts: the next id is 2.
    let next = store
        .registry_register("a-value", "f2", "S2", Some(1))
        .await
        .unwrap();
    assert_eq!(next, v("a-value", 2, 2, "S2"));
}

pub(super) async fn registry_concurrent_registrations_get_distinct_ids(store: Store) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .registry_register(&format!("s{i}-value"), &format!("f{i}"), "S", None)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        assert_eq!(got.version, 1);
        ids.push(got.id);
    }
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8]);
}

pub(super) async fn registry_levels(store: Store) {
    assert_eq!(store.registry_level(None).await.unwrap(), None);
    store.set_registry_level(None, "FULL").await.unwrap();
    store
        .set_registry_level(Some("a-value"), "NONE")
        .await
        .unwrap();
    assert_eq!(
        store.registry_level(None).await.unwrap().as_deref(),
        Some("FULL")
    );
    assert_eq!(
        store
            .registry_level(Some("a-value"))
            .await
            .unwrap()
            .as_deref(),
        Some("NONE")
    );
    assert_eq!(store.registry_level(Some("b-value")).await.unwrap(), None);
    store.set_registry_level(None, "FORWARD").await.unwrap();
    assert_eq!(
        store.registry_level(None).await.unwrap().as_deref(),
        Some("FORWARD")
    );
}

on_both!(
    registry_versions_and_ids,
    registry_refuses_a_check_against_a_stale_latest,
    registry_concurrent_registrations_get_distinct_ids,
    registry_levels,
);
