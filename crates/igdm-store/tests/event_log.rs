//! Conformance of the webhook event log on both backends.

mod common;

conformance!(
    deliveries_are_durable_and_readable,
    retried_delivery_inserts_events_once,
    claim_complete_and_fail,
    expired_lease_is_claimable_again,
    dead_letters_are_counted,
    concurrent_claimers_never_share_an_event,
    group_commit_records_deliveries_events_and_dead_letters,
    complete_events_in_bulk,
    large_group_maps_every_event_to_its_delivery,
    leased_group_commit_holds_new_events_for_their_owner,
    released_events_are_pending_again,
    unexpanded_deliveries_are_expanded_once,
    unexpanded_deliveries_are_claimed_after_their_lease,
);

mod cases {
    use std::collections::HashSet;
    use std::time::Duration;

    use igdm_model::{EventKind, Timestamp};
    use igdm_store::{
        DeadLetterSource, DeliveryId, EventId, EventState, Expansion, Lease, NewDelivery, NewEvent,
        RawDelivery,
    };
    use serde_json::json;

    use crate::common::Harness;

    fn event(key: &str) -> NewEvent {
        NewEvent {
            dedup_key: key.to_owned(),
            kind: EventKind::Message,
            account_id: "17841400000000001".to_owned(),
            payload: json!({"kind": "message", "mid": key, "text": "héllo"}),
        }
    }

    pub async fn deliveries_are_durable_and_readable(h: &Harness) {
        let s = &h.store;
        let body = br#"{"object":"instagram","entry":[]}"#;
        let at = Timestamp::from_unix_millis(1_700_000_000_123).unwrap();
        let id = s.append_delivery(body, at).await.unwrap();
        // A second connection pool (as another process would) sees the committed row.
        let other = h.reopen().await;
        let d = other.get_delivery(id).await.unwrap().expect("delivery stored");
        assert_eq!(d.raw_body, body);
        assert_eq!(d.received_at, at);
        assert_eq!(d.duplicates, 0);
        assert_eq!(other.event_log_counts().await.unwrap().deliveries, 1);
        let id2 = s.append_delivery(b"", at).await.unwrap();
        assert!(id2 > id);
        assert!(s.get_delivery(igdm_store::DeliveryId(id2.0 + 100)).await.unwrap().is_none());
    }

    pub async fn retried_delivery_inserts_events_once(h: &Harness) {
        let s = &h.store;
        let now = Timestamp::now();
        let d1 = s.append_delivery(b"first", now).await.unwrap();
        let first = s.insert_events(d1, &[event("a"), event("b")]).await.unwrap();
        assert_eq!(first.inserted.len(), 2);
        assert!(first.duplicates.is_empty());

        let d2 = s.append_delivery(b"retry", now).await.unwrap();
        let retry =
            s.insert_events(d2, &[event("a"), event("c"), event("b"), event("c")]).await.unwrap();
        assert_eq!(retry.inserted.len(), 1);
        assert_eq!(retry.duplicates, ["a", "b", "c"]);

        let stored = s.get_event(retry.inserted[0]).await.unwrap().unwrap();
        assert_eq!(stored.dedup_key, "c");
        assert_eq!(stored.delivery_id, d2);
        assert_eq!(stored.kind, EventKind::Message);
        assert_eq!(stored.payload["text"], "héllo");
        assert_eq!(stored.state, EventState::Pending);
        assert_eq!(stored.attempts, 0);

        let counts = s.event_log_counts().await.unwrap();
        assert_eq!(counts.deliveries, 2);
        assert_eq!(counts.pending, 3);
        assert_eq!(counts.dedup_hits, 3);
        assert_eq!(s.get_delivery(d2).await.unwrap().unwrap().duplicates, 3);
    }

    pub async fn claim_complete_and_fail(h: &Harness) {
        let s = &h.store;
        let d = s.append_delivery(b"{}", Timestamp::now()).await.unwrap();
        let ids = s.insert_events(d, &[event("1"), event("2"), event("3")]).await.unwrap().inserted;
        let lease = Duration::from_secs(60);

        let first = s.claim_events("w1", 2, lease).await.unwrap();
        assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), ids[..2]);
        for e in &first {
            assert_eq!(e.state, EventState::Processing);
            assert_eq!(e.attempts, 1);
            assert_eq!(e.lease_owner.as_deref(), Some("w1"));
            assert!(e.lease_until.unwrap() > Timestamp::now());
        }
        let second = s.claim_events("w2", 10, lease).await.unwrap();
        assert_eq!(second.iter().map(|e| e.id).collect::<Vec<_>>(), ids[2..]);
        assert!(s.claim_events("w3", 10, lease).await.unwrap().is_empty());

        s.complete_event(ids[0]).await.unwrap();
        // A retry time in the past: claimable again at once, and the error is kept.
        let past = Timestamp::from_unix_seconds(Timestamp::now().unix_seconds() - 5).unwrap();
        s.fail_event(ids[1], "HTTP 503 from the handler", Some(past)).await.unwrap();
        // A retry time in the future: not claimable yet.
        let later = Timestamp::from_unix_seconds(Timestamp::now().unix_seconds() + 3600).unwrap();
        s.fail_event(ids[2], "rate limited", Some(later)).await.unwrap();

        let again = s.claim_events("w1", 10, lease).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, ids[1]);
        assert_eq!(again[0].attempts, 2);
        assert_eq!(again[0].last_error.as_deref(), Some("HTTP 503 from the handler"));
        s.fail_event(ids[1], "bad payload", None).await.unwrap();

        let failed = s.get_event(ids[1]).await.unwrap().unwrap();
        assert_eq!(failed.state, EventState::Failed);
        assert_eq!(failed.lease_owner, None);
        let counts = s.event_log_counts().await.unwrap();
        assert_eq!((counts.pending, counts.processing, counts.done, counts.failed), (1, 0, 1, 1));
        let backlog = s.event_backlog().await.unwrap();
        assert_eq!((backlog.pending, backlog.processing, backlog.failed), (1, 0, 1));
        assert!(s.claim_events("w1", 10, lease).await.unwrap().is_empty());
        assert!(matches!(
            s.complete_event(igdm_store::EventId(ids[2].0 + 1000)).await,
            Err(igdm_store::StoreError::NotFound(_))
        ));
    }

    pub async fn expired_lease_is_claimable_again(h: &Harness) {
        let s = &h.store;
        let d = s.append_delivery(b"{}", Timestamp::now()).await.unwrap();
        let ids = s.insert_events(d, &[event("x")]).await.unwrap().inserted;
        // A worker claims with a very short lease and "crashes".
        let claimed = s.claim_events("crashing", 10, Duration::from_millis(1)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let reclaimed = s.claim_events("healthy", 10, Duration::from_secs(30)).await.unwrap();
        assert_eq!(reclaimed.len(), 1);
        assert_eq!(reclaimed[0].id, ids[0]);
        assert_eq!(reclaimed[0].attempts, 2);
        assert_eq!(reclaimed[0].lease_owner.as_deref(), Some("healthy"));
        // A live lease is not taken over.
        assert!(s.claim_events("third", 10, Duration::from_secs(30)).await.unwrap().is_empty());
    }

    pub async fn dead_letters_are_counted(h: &Harness) {
        let s = &h.store;
        let d = s.append_delivery(b"not json", Timestamp::now()).await.unwrap();
        let a = s.dead_letter(DeadLetterSource::Delivery(d), "body is not JSON").await.unwrap();
        let b = s.dead_letter(DeadLetterSource::RawBody(b"forged"), "bad signature").await.unwrap();
        assert_ne!(a, b);
        let counts = s.event_log_counts().await.unwrap();
        assert_eq!(counts.dead_letters, 2);
        assert_eq!(s.event_backlog().await.unwrap().dead_letters, 2);
        assert_eq!(counts.deliveries, 1);
    }

    pub async fn concurrent_claimers_never_share_an_event(h: &Harness) {
        let s = &h.store;
        let d = s.append_delivery(b"{}", Timestamp::now()).await.unwrap();
        let events: Vec<NewEvent> = (0..60).map(|i| event(&format!("k{i}"))).collect();
        let all: HashSet<_> =
            s.insert_events(d, &events).await.unwrap().inserted.into_iter().collect();
        assert_eq!(all.len(), 60);

        let other = h.reopen().await;
        let worker = |store: igdm_store::Store, name: &'static str| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = store.claim_events(name, 4, Duration::from_secs(60)).await.unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    got.extend(batch.into_iter().map(|e| e.id));
                }
                got
            })
        };
        let a = worker(h.store.clone(), "a");
        let b = worker(other, "b");
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let sa: HashSet<_> = a.iter().copied().collect();
        let sb: HashSet<_> = b.iter().copied().collect();
        assert_eq!(sa.len(), a.len(), "a worker got an event twice");
        assert!(sa.is_disjoint(&sb), "two workers got the same event");
        assert_eq!(&sa | &sb, all);
    }

    pub async fn group_commit_records_deliveries_events_and_dead_letters(h: &Harness) {
        let s = &h.store;
        let now = Timestamp::now();
        let first = [event("p"), event("q")];
        let retried = [event("q"), event("r"), event("r")];
        let batch = [
            NewDelivery { raw_body: b"one", received_at: now, events: &first, dead_letter: None },
            NewDelivery {
                raw_body: b"bad",
                received_at: now,
                events: &[],
                dead_letter: Some("not JSON"),
            },
            NewDelivery { raw_body: b"two", received_at: now, events: &retried, dead_letter: None },
        ];
        let recorded = s.record_deliveries(&batch).await.unwrap();
        assert_eq!(recorded.len(), 3);
        assert_eq!(recorded[0].events.inserted.len(), 2);
        assert!(recorded[0].events.duplicates.is_empty());
        assert!(recorded[1].dead_letter.is_some() && recorded[1].events.inserted.is_empty());
        assert_eq!(recorded[2].events.inserted.len(), 1);
        assert_eq!(recorded[2].events.duplicates, ["q", "r"]);
        assert_eq!(s.get_delivery(recorded[1].id).await.unwrap().unwrap().raw_body, b"bad");
        let counts = s.event_log_counts().await.unwrap();
        assert_eq!(
            (counts.deliveries, counts.pending, counts.dead_letters, counts.dedup_hits),
            (3, 3, 1, 2)
        );
        // A later group with the same keys stores nothing new.
        let again = s
            .record_deliveries(&[NewDelivery {
                raw_body: b"x",
                received_at: now,
                events: &first,
                dead_letter: None,
            }])
            .await
            .unwrap();
        assert_eq!(again[0].events.duplicates, ["p", "q"]);
        assert!(s.record_deliveries(&[]).await.unwrap().is_empty());
    }

    pub async fn complete_events_in_bulk(h: &Harness) {
        let s = &h.store;
        let d = s.append_delivery(b"{}", Timestamp::now()).await.unwrap();
        let events: Vec<NewEvent> = (0..7).map(|i| event(&format!("b{i}"))).collect();
        let ids = s.insert_events(d, &events).await.unwrap().inserted;
        let claimed = s.claim_events("w", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(claimed.len(), 7);
        s.complete_events(&ids[..5]).await.unwrap();
        s.complete_events(&[]).await.unwrap();
        for id in &ids[..5] {
            let e = s.get_event(*id).await.unwrap().unwrap();
            assert_eq!(e.state, EventState::Done);
            assert_eq!(e.lease_owner, None);
        }
        let counts = s.event_log_counts().await.unwrap();
        assert_eq!((counts.done, counts.processing), (5, 2));
    }

    pub async fn large_group_maps_every_event_to_its_delivery(h: &Harness) {
        let s = &h.store;
        let now = Timestamp::now();
        // More deliveries than one multi-row INSERT holds, each with its own
        // event, some retried inside the group and one already stored.
        let pre = s.append_delivery(b"earlier", now).await.unwrap();
        s.insert_events(pre, &[event("k0007")]).await.unwrap();
        let events: Vec<[NewEvent; 1]> =
            (0..1_203).map(|i| [event(&format!("k{:04}", i % 1_200))]).collect();
        let bodies: Vec<String> = (0..1_203).map(|i| format!("body {i}")).collect();
        let batch: Vec<NewDelivery<'_>> = events
            .iter()
            .zip(&bodies)
            .map(|(e, b)| NewDelivery {
                raw_body: b.as_bytes(),
                received_at: now,
                events: e,
                dead_letter: None,
            })
            .collect();
        let recorded = s.record_deliveries(&batch).await.unwrap();
        assert_eq!(recorded.len(), 1_203);
        let mut previous = pre;
        for (i, rec) in recorded.iter().enumerate() {
            assert!(rec.id > previous, "delivery ids follow the batch order");
            previous = rec.id;
            let d = s.get_delivery(rec.id).await.unwrap().unwrap();
            assert_eq!(d.raw_body, bodies[i].as_bytes(), "delivery {i} holds its own body");
            let key = format!("k{:04}", i % 1_200);
            if i >= 1_200 || key == "k0007" {
                assert!(rec.events.inserted.is_empty(), "{key} was stored before");
                assert_eq!(rec.events.duplicates, [key]);
                assert_eq!(d.duplicates, 1);
            } else {
                assert_eq!(rec.events.inserted.len(), 1);
                let e = s.get_event(rec.events.inserted[0]).await.unwrap().unwrap();
                assert_eq!((e.delivery_id, e.dedup_key.as_str()), (rec.id, key.as_str()));
            }
        }
        let counts = s.event_log_counts().await.unwrap();
        assert_eq!((counts.deliveries, counts.pending, counts.dedup_hits), (1_204, 1_200, 4));
    }

    pub async fn leased_group_commit_holds_new_events_for_their_owner(h: &Harness) {
        let s = &h.store;
        let now = Timestamp::now();
        let pre = s.append_delivery(b"earlier", now).await.unwrap();
        s.insert_events(pre, &[event("old")]).await.unwrap();
        // Keys out of order inside a delivery, one repeated inside it, one
        // stored before, and one repeated by a later delivery of the group.
        let first = [event("z"), event("old"), event("m"), event("z"), event("a")];
        let second = [event("m"), event("n")];
        let batch = [
            NewDelivery { raw_body: b"one", received_at: now, events: &first, dead_letter: None },
            NewDelivery { raw_body: b"two", received_at: now, events: &second, dead_letter: None },
        ];
        let until = Timestamp(now.0 + chrono::TimeDelta::seconds(60));
        let recorded =
            s.record_deliveries_leased(&batch, Lease { owner: "receiver-1", until }).await.unwrap();
        let shape = |ids: &[Option<EventId>]| ids.iter().map(Option::is_some).collect::<Vec<_>>();
        assert_eq!(shape(&recorded[0].event_ids), [true, false, true, false, true]);
        assert_eq!(shape(&recorded[1].event_ids), [false, true]);
        // Ids line up with the input: each names the event of that key.
        for (d, rec) in batch.iter().zip(&recorded) {
            let flat: Vec<EventId> = rec.event_ids.iter().flatten().copied().collect();
            assert_eq!(flat, rec.events.inserted, "inserted ids are in input order");
            for (e, id) in d.events.iter().zip(&rec.event_ids) {
                if let Some(id) = id {
                    let stored = s.get_event(*id).await.unwrap().unwrap();
                    assert_eq!(stored.dedup_key, e.dedup_key);
                    assert_eq!(stored.delivery_id, rec.id);
                    assert_eq!(stored.state, EventState::Processing);
                    assert_eq!(stored.lease_owner.as_deref(), Some("receiver-1"));
                    assert_eq!(stored.attempts, 1, "the lease counts as a claim");
                }
            }
        }
        assert_eq!(recorded[0].events.duplicates, ["old", "z"]);
        assert_eq!(recorded[1].events.duplicates, ["m"]);
        // Another claimer gets only the unleased event stored before.
        let other = s.claim_events("w2", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(other.iter().map(|e| e.dedup_key.as_str()).collect::<Vec<_>>(), ["old"]);
        let counts = s.event_log_counts().await.unwrap();
        assert_eq!((counts.processing, counts.pending), (5, 0));
        let backlog = s.event_backlog().await.unwrap();
        assert_eq!((backlog.processing, backlog.pending, backlog.failed), (5, 0, 0));
        // A lease that has run out is claimable like any other.
        let past = Timestamp(now.0 - chrono::TimeDelta::seconds(1));
        let late = [event("late")];
        let expired = s
            .record_deliveries_leased(
                &[NewDelivery {
                    raw_body: b"3",
                    received_at: now,
                    events: &late,
                    dead_letter: None,
                }],
                Lease { owner: "receiver-dead", until: past },
            )
            .await
            .unwrap();
        let taken = s.claim_events("w3", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(Some(taken[0].id), expired[0].event_ids[0]);
        assert_eq!(taken[0].attempts, 2);
        assert_eq!(taken[0].lease_owner.as_deref(), Some("w3"));
    }

    pub async fn released_events_are_pending_again(h: &Harness) {
        let s = &h.store;
        let d = s.append_delivery(b"{}", Timestamp::now()).await.unwrap();
        let events: Vec<NewEvent> = (0..3).map(|i| event(&format!("rel{i}"))).collect();
        let ids = s.insert_events(d, &events).await.unwrap().inserted;
        assert_eq!(s.claim_events("a", 10, Duration::from_secs(60)).await.unwrap().len(), 3);
        // Only the holder of the lease can give it back.
        s.release_events("b", &ids).await.unwrap();
        assert_eq!(s.event_log_counts().await.unwrap().processing, 3);
        s.release_events("a", &ids[..2]).await.unwrap();
        s.release_events("a", &[]).await.unwrap();
        for id in &ids[..2] {
            let e = s.get_event(*id).await.unwrap().unwrap();
            assert_eq!((e.state, e.attempts, e.lease_owner), (EventState::Pending, 0, None));
        }
        let again = s.claim_events("c", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), ids[..2]);
        assert!(again.iter().all(|e| e.attempts == 1));
    }

    pub async fn unexpanded_deliveries_are_expanded_once(h: &Harness) {
        let s = &h.store;
        let now = Timestamp::now();
        let pre = s.append_delivery(b"earlier", now).await.unwrap();
        s.insert_events(pre, &[event("u-old")]).await.unwrap();
        let until = Timestamp(now.0 + chrono::TimeDelta::seconds(60));
        let lease = Lease { owner: "receiver-1", until };
        let raw = [
            RawDelivery { raw_body: b"one", received_at: now },
            RawDelivery { raw_body: b"two", received_at: now },
            RawDelivery { raw_body: b"{bad", received_at: now },
        ];
        let ids = s.append_unexpanded(&raw, Some(lease)).await.unwrap();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in input order: {ids:?}");
        assert!(s.append_unexpanded(&[], None).await.unwrap().is_empty());
        // Durable and readable at once, from another pool too; nothing expanded yet.
        let other = h.reopen().await;
        for (id, d) in ids.iter().zip(&raw) {
            assert_eq!(other.get_delivery(*id).await.unwrap().unwrap().raw_body, d.raw_body);
        }
        let counts = other.event_log_counts().await.unwrap();
        assert_eq!((counts.deliveries, counts.unexpanded, counts.pending), (4, 3, 1));
        assert_eq!(other.event_backlog().await.unwrap().unexpanded, 3);
        // Leased deliveries are not claimable by others.
        assert!(s.claim_unexpanded("w2", 10, Duration::from_secs(60)).await.unwrap().is_empty());

        let first = [event("u-z"), event("u-old"), event("u-m"), event("u-z")];
        let second = [event("u-m"), event("u-n")];
        let batch = [
            Expansion { delivery: ids[0], events: &first, dead_letter: None },
            Expansion { delivery: ids[1], events: &second, dead_letter: None },
            Expansion { delivery: ids[2], events: &[], dead_letter: Some("not JSON") },
            // Never appended unexpanded: left alone.
            Expansion { delivery: pre, events: &[event("u-x")], dead_letter: None },
        ];
        let got = s.expand_deliveries(&batch, Some(lease)).await.unwrap();
        assert!(got[3].is_none(), "an expanded delivery is not expanded again");
        let (a, b, c) =
            (got[0].as_ref().unwrap(), got[1].as_ref().unwrap(), got[2].as_ref().unwrap());
        let shape = |ids: &[Option<EventId>]| ids.iter().map(Option::is_some).collect::<Vec<_>>();
        assert_eq!(shape(&a.event_ids), [true, false, true, false]);
        assert_eq!(shape(&b.event_ids), [false, true]);
        assert_eq!(a.events.duplicates, ["u-old", "u-z"]);
        assert_eq!(b.events.duplicates, ["u-m"]);
        assert!(c.dead_letter.is_some() && c.event_ids.is_empty());
        for (e, id) in first.iter().zip(&a.event_ids) {
            if let Some(id) = id {
                let stored = s.get_event(*id).await.unwrap().unwrap();
                assert_eq!(
                    (stored.dedup_key.as_str(), stored.delivery_id),
                    (e.dedup_key.as_str(), ids[0])
                );
                assert_eq!(stored.state, EventState::Processing);
                assert_eq!(stored.lease_owner.as_deref(), Some("receiver-1"));
            }
        }
        assert_eq!(s.get_delivery(ids[0]).await.unwrap().unwrap().duplicates, 2);
        assert!(s.get_event(EventId(0)).await.unwrap().is_none());
        let counts = s.event_log_counts().await.unwrap();
        assert_eq!(
            (counts.unexpanded, counts.processing, counts.dead_letters, counts.dedup_hits),
            (0, 3, 1, 3)
        );
        // Expanding again (a second claimer after the lease ran out) stores nothing.
        let again = s.expand_deliveries(&batch, None).await.unwrap();
        assert!(again.iter().all(Option::is_none));
        let after = s.event_log_counts().await.unwrap();
        assert_eq!(after, counts);
        assert!(s.expand_deliveries(&[], None).await.unwrap().is_empty());
    }

    pub async fn unexpanded_deliveries_are_claimed_after_their_lease(h: &Harness) {
        let s = &h.store;
        let now = Timestamp::now();
        let past = Timestamp(now.0 - chrono::TimeDelta::seconds(1));
        let future = Timestamp(now.0 + chrono::TimeDelta::seconds(60));
        let raw = |b: &'static [u8]| RawDelivery { raw_body: b, received_at: now };
        let dead = s
            .append_unexpanded(
                &[raw(b"d1"), raw(b"d2")],
                Some(Lease { owner: "dead", until: past }),
            )
            .await
            .unwrap();
        let live = s
            .append_unexpanded(&[raw(b"l1")], Some(Lease { owner: "live", until: future }))
            .await
            .unwrap();
        let free = s.append_unexpanded(&[raw(b"f1")], None).await.unwrap();
        // Expired and unleased ones, oldest first, up to the limit.
        let taken = s.claim_unexpanded("w1", 2, Duration::from_secs(60)).await.unwrap();
        assert_eq!(taken.iter().map(|d| d.id).collect::<Vec<_>>(), dead);
        assert_eq!(taken[0].raw_body, b"d1");
        let rest = s.claim_unexpanded("w2", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(rest.iter().map(|d| d.id).collect::<Vec<_>>(), free);
        assert!(s.claim_unexpanded("w3", 10, Duration::from_secs(60)).await.unwrap().is_empty());
        // Only the holder can give a delivery back; then anyone may take it.
        s.release_unexpanded("w1", &live).await.unwrap();
        s.release_unexpanded("live", &live).await.unwrap();
        s.release_unexpanded("live", &[]).await.unwrap();
        let released = s.claim_unexpanded("w3", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(released.iter().map(|d| d.id).collect::<Vec<_>>(), live);
        // Concurrent claimers never share one.
        let many: Vec<RawDelivery<'_>> = (0..40).map(|_| raw(b"c")).collect();
        s.append_unexpanded(&many, None).await.unwrap();
        let other = h.reopen().await;
        let (x, y) = tokio::join!(
            s.claim_unexpanded("x", 25, Duration::from_secs(60)),
            other.claim_unexpanded("y", 25, Duration::from_secs(60))
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let ids: std::collections::HashSet<DeliveryId> = x.iter().chain(&y).map(|d| d.id).collect();
        assert_eq!(ids.len(), x.len() + y.len(), "a delivery claimed twice");
        assert_eq!(ids.len(), 40);
        // Expanded deliveries are no longer claimable.
        let exp: Vec<Expansion<'_>> = x
            .iter()
            .map(|d| Expansion { delivery: d.id, events: &[], dead_letter: None })
            .collect();
        assert!(s.expand_deliveries(&exp, None).await.unwrap().iter().all(Option::is_some));
        assert_eq!(
            s.event_log_counts().await.unwrap().unexpanded,
            u64::try_from(y.len() + 4).unwrap()
        );
    }
}
