//! Organisations, users, API tokens and sessions on both databases.

use super::*;
use crate::{Account, NewUser};
use chrono::TimeDelta;
use istv_access::{AreaLevel, Principal, Profile, Role, Scope, User};
use istv_aggregate::Dimension;
use std::collections::BTreeSet;

fn analyst_profile() -> Profile {
    Profile {
        max_resolution: 8,
        finest_area: AreaLevel::Ward,
        dimensions: Some(BTreeSet::from([
            Dimension::Month,
            Dimension::Borough,
            Dimension::Ward,
        ])),
    }
}

async fn with_analyst(store: &Store) -> User {
    store
        .add_org("VRU", "Violence Reduction Unit")
        .await
        .unwrap();
    let scope = Scope::parse("E09000028,E09000022").unwrap();
    let profile = analyst_profile();
    store
        .add_user(&NewUser {
            name: "ana",
            org: "VRU",
            role: Role::Analyst,
            password_hash: "$argon2id$stored-as-given",
            scope: &scope,
            profile: &profile,
            sites: &[],
        })
        .await
        .unwrap();
    User {
        name: "ana".into(),
        org: "VRU".into(),
        role: Role::Analyst,
        scope,
        profile,
        sites: vec![],
    }
}

pub(super) async fn orgs_and_users(store: Store) {
    let ana = with_analyst(&store).await;
    assert!(matches!(
        store.add_org("VRU", "again").await,
        Err(StoreError::OrgExists(c)) if c == "VRU"
    ));
    let orgs = store.list_orgs().await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(
        (orgs[0].code.as_str(), orgs[0].name.as_str()),
        ("VRU", "Violence Reduction Unit")
    );
    let Account {
        user,
        disabled,
        password_hash,
        ..
    } = store.account("ana").await.unwrap().unwrap();
    assert_eq!(user, ana);
    assert!(!disabled);
    assert_eq!(password_hash, "$argon2id$stored-as-given");
    assert!(store.account("bob").await.unwrap().is_none());

    let full = Profile::FULL;
    let new = |name: &'static str, org: &'static str, role, sites: &'static [String]| NewUser {
        name,
        org,
        role,
        password_hash: "h",
        scope: &Scope::London,
        profile: &full,
        sites,
    };
    assert!(matches!(
        store.add_user(&new("ana", "VRU", Role::Admin, &[])).await,
        Err(StoreError::UserExists(_))
    ));
    assert!(matches!(
        store.add_user(&new("x", "NOPE", Role::Admin, &[])).await,
        Err(StoreError::NoSuchOrg(_))
    ));
    assert!(matches!(
        store.add_user(&new("up", "VRU", Role::Uploader, &[])).await,
        Err(StoreError::InvalidAccount(m)) if m == "an uploader needs at least one site (--sites)"
    ));
    static RJ122: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["RJ122".to_string()]);
    assert!(matches!(
        store.add_user(&new("up", "VRU", Role::Uploader, &RJ122)).await,
        Err(StoreError::NoSuchSite(s)) if s == "RJ122"
    ));
    // Nothing of the refused user was kept.
    assert!(store.account("up").await.unwrap().is_none());
    store.add_site("RJ122", "King's").await.unwrap();
    store
        .add_user(&new("up", "VRU", Role::Uploader, &RJ122))
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_user(&new("adm", "VRU", Role::Admin, &RJ122))
            .await,
        Err(StoreError::InvalidAccount(_))
    ));
    let all = store.list_accounts().await.unwrap();
    let names: Vec<(&str, Role, &[String])> = all
        .iter()
        .map(|a| (a.user.name.as_str(), a.user.role, a.user.sites.as_slice()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("ana", Role::Analyst, &[][..]),
            ("up", Role::Uploader, &RJ122[..])
        ]
    );

    store.set_password("ana", "new-hash").await.unwrap();
    assert_eq!(
        store.account("ana").await.unwrap().unwrap().password_hash,
        "new-hash"
    );
    store.disable_user("ana").await.unwrap();
    assert!(store.account("ana").await.unwrap().unwrap().disabled);
    assert!(matches!(
        store.disable_user("bob").await,
        Err(StoreError::NoSuchUser(_))
    ));
    assert!(matches!(
        store.set_password("bob", "h").await,
        Err(StoreError::NoSuchUser(_))
    ));
}

pub(super) async fn api_tokens(store: Store) {
    let ana = with_analyst(&store).await;
    let now = chrono::Utc::now();
    let laptop = store.issue_api_token("ana", "laptop", None).await.unwrap();
    let soon = store
        .issue_api_token("ana", "soon", Some(now + TimeDelta::hours(1)))
        .await
        .unwrap();
    assert_eq!(laptop.len(), 64);
    let me = Some(Principal::User(ana.clone()));
    assert_eq!(store.authenticate_bearer(&laptop, now).await.unwrap(), me);
    assert_eq!(store.authenticate_bearer(&soon, now).await.unwrap(), me);
    // Expired one hour later; the other still works.
    let later = now + TimeDelta::hours(1);
    assert_eq!(store.authenticate_bearer(&soon, later).await.unwrap(), None);
    assert_eq!(store.authenticate_bearer(&laptop, later).await.unwrap(), me);
    // A forged token, and one a character off.
    let mut off = laptop.clone();
    off.replace_range(0..1, if laptop.starts_with('0') { "1" } else { "0" });
    assert_eq!(store.authenticate_bearer(&off, now).await.unwrap(), None);
    assert_eq!(
        store
            .authenticate_bearer(&"f".repeat(64), now)
            .await
            .unwrap(),
        None
    );
    // A name is unique among live tokens.
    assert!(matches!(
        store.issue_api_token("ana", "laptop", None).await,
        Err(StoreError::TokenNameTaken { .. })
    ));
    assert!(matches!(
        store.issue_api_token("bob", "x", None).await,
        Err(StoreError::NoSuchUser(_))
    ));
    // Revoked one by one: the other keeps working, the name can be reused.
    store.revoke_api_token("ana", "laptop").await.unwrap();
    assert_eq!(store.authenticate_bearer(&laptop, now).await.unwrap(), None);
    assert_eq!(store.authenticate_bearer(&soon, now).await.unwrap(), me);
    assert!(matches!(
        store.revoke_api_token("ana", "laptop").await,
        Err(StoreError::NoSuchToken { .. })
    ));
    let laptop2 = store.issue_api_token("ana", "laptop", None).await.unwrap();
    assert_eq!(store.authenticate_bearer(&laptop2, now).await.unwrap(), me);
    // Listed with their state, last use recorded in the background.
    let mut used = false;
    for _ in 0..100 {
        let tokens = store.list_api_tokens("ana").await.unwrap();
        let names: Vec<(&str, bool)> = tokens
            .iter()
            .map(|t| (t.name.as_str(), t.revoked))
            .collect();
        assert_eq!(
            names,
            vec![("laptop", true), ("laptop", false), ("soon", false)]
        );
        assert_eq!(
            tokens[2].expires_at.map(|t| t.timestamp()),
            Some((now + TimeDelta::hours(1)).timestamp())
        );
        if tokens[1].last_used_at.is_some() && tokens[2].last_used_at.is_some() {
            used = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(used, "last use not recorded");
    // Site tokens still authenticate, as their site.
    let site = store.add_site("RJ122", "King's").await.unwrap();
    assert_eq!(
        store.authenticate_bearer(&site, now).await.unwrap(),
        Some(Principal::Site("RJ122".into()))
    );
    // A disabled user's tokens do not.
    store.disable_user("ana").await.unwrap();
    assert_eq!(
        store.authenticate_bearer(&laptop2, now).await.unwrap(),
        None
    );
}

pub(super) async fn sessions(store: Store) {
    let ana = with_analyst(&store).await;
    let now = chrono::Utc::now();
    let idle = Duration::from_secs(30 * 60);
    let absolute = Duration::from_secs(8 * 3600);
    let s = store
        .create_session("ana", now, idle, absolute)
        .await
        .unwrap();
    assert_ne!(s.id, s.csrf);
    let live = store.session(&s.id, now, idle).await.unwrap().unwrap();
    assert_eq!(live.user, ana);
    assert!(live.csrf_matches(&s.csrf));
    assert!(!live.csrf_matches(&s.id));
    assert!(store.session(&s.csrf, now, idle).await.unwrap().is_none());
    // Used 20 minutes later, the idle expiry moves on: 40 minutes after the
    // start it is still live (another use), 31 minutes after that one it is
    // not, whether or not that use's own move was written yet.
    let t20 = now + TimeDelta::minutes(20);
    assert!(store.session(&s.id, t20, idle).await.unwrap().is_some());
    let mut moved = false;
    for _ in 0..100 {
        if store
            .session(&s.id, now + TimeDelta::minutes(40), idle)
            .await
            .unwrap()
            .is_some()
        {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(moved, "idle expiry not moved on");
    assert!(store
        .session(&s.id, now + TimeDelta::minutes(71), idle)
        .await
        .unwrap()
        .is_none());
    // Past the absolute expiry, however recently used.
    let s2 = store
        .create_session("ana", now, idle, absolute)
        .await
        .unwrap();
    assert!(store
        .session(&s2.id, now + TimeDelta::hours(8), idle)
        .await
        .unwrap()
        .is_none());
    // Signed out.
    store.end_session(&s2.id).await.unwrap();
    assert!(store.session(&s2.id, now, idle).await.unwrap().is_none());
    // A new password ends every session of the user.
    let s3 = store
        .create_session("ana", now, idle, absolute)
        .await
        .unwrap();
    store.set_password("ana", "other").await.unwrap();
    assert!(store.session(&s3.id, now, idle).await.unwrap().is_none());
    let s4 = store
        .create_session("ana", now, idle, absolute)
        .await
        .unwrap();
    store.disable_user("ana").await.unwrap();
    assert!(store.session(&s4.id, now, idle).await.unwrap().is_none());
}

on_both!(orgs_and_users, api_tokens, sessions);
