//! `WorkloadStore` and `DelegatedSessionStore` on SQLite and PostgreSQL, and the rules of
//! delegated sessions (core `sessions`) on a real store with the clock in the test's hands: a
//! nonce binds once and only for 60 s, keys rotate with a 30 s retry window, scopes never
//! widen, one child per session, revocation ends refresh and every token.

use sesame_core::crypto::MasterKey;
use sesame_core::ids::{ClientId, TenantId, UserId, Username};
use sesame_core::keys::{new_stored_key, Keyring};
use sesame_core::model::{Client, ClientType, GrantType, KeyState, SigningAlg, Tenant, User};
use sesame_core::sessions::{self, Creator};
use sesame_core::store::{DelegatedSessionStore, Store, WorkloadStore};
use sesame_core::token::{self, IssueContext, Signer, TokenRequest, TokenResponse};
use sesame_core::workload::{self, Source, SourceId, SourceSpec, WorkloadSettings};
use sesame_core::Error;
use sesame_store::SqlStore;

const ISS: &str = "https://id.example/t/acme";

fn tid() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn client(id: &str, grants: Vec<GrantType>) -> Client {
    Client {
        tenant_id: tid(),
        client_id: ClientId::parse(id).unwrap(),
        name: id.into(),
        client_type: ClientType::Confidential,
        secret_hash: Some([7; 32]),
        grant_types: grants,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        require_pkce: true,
        first_party: false,
        refresh_without_offline_access: false,
        backchannel_logout_uri: None,
        allowed_scopes: vec![],
        allowed_audiences: vec![],
        signing_alg: None,
        access_token_ttl: Some(600),
        introspect_any: false,
        jwks: None,
        jwks_uri: None,
        trust_policy: None,
        token_exchange_impersonation: false,
        disabled: false,
        revoked_before: 0,
        created_at: 100,
        updated_at: 100,
    }
}

struct World {
    master: MasterKey,
    tenant: Tenant,
    keyring: Keyring,
    job: Client,
    user: User,
}

async fn world(s: &SqlStore) -> World {
    let master = MasterKey::generate().0;
    let tenant = Tenant {
        signing_alg: SigningAlg::EdDSA,
        ..Tenant::new(tid(), 100)
    };
    let keys = vec![new_stored_key(&master, &tenant.id, SigningAlg::EdDSA, KeyState::Active, 100).unwrap()];
    s.create_tenant(&tenant, &keys).await.unwrap();
    let keyring = Keyring::load(&master, &keys, 100).unwrap();
    let job = client("job", vec![GrantType::SessionNonce, GrantType::SessionKey]);
    s.create_client(&job).await.unwrap();
    let user = User {
        tenant_id: tid(),
        id: UserId::generate(),
        username: Username::parse("alice").unwrap(),
        email: None,
        email_verified: false,
        name: None,
        picture: None,
        disabled: false,
        password_hash: None,
        created_at: 100,
        updated_at: 100,
    };
    s.create_user(&user).await.unwrap();
    World {
        master,
        tenant,
        keyring,
        job,
        user,
    }
}

impl World {
    fn ctx<'a>(&'a self, s: &'a SqlStore, now: i64) -> IssueContext<'a> {
        IssueContext {
            signer: Signer {
                issuer: ISS,
                tenant: &self.tenant,
                keyring: &self.keyring,
                now,
            },
            store: s,
            master: &self.master,
            trust: None,
            upstream: None,
        }
    }

    async fn create(
        &self,
        s: &SqlStore,
        token_scope: &str,
        parent: Option<&str>,
        scope: Option<&str>,
        now: i64,
    ) -> sesame_core::Result<sessions::Created> {
        sessions::create(
            s,
            &self.tenant.id,
            &WorkloadSettings::defaults(&self.tenant.id),
            Creator {
                user: &self.user,
                token_scope,
                parent_sid: parent,
            },
            Some(&self.job),
            scope,
            None,
            now,
        )
        .await
    }

    async fn grant(
        &self,
        s: &SqlStore,
        request: TokenRequest,
        now: i64,
    ) -> sesame_core::Result<TokenResponse> {
        token::issue(&self.ctx(s, now), &self.job, request).await
    }

    async fn bind(&self, s: &SqlStore, nonce: &str, now: i64) -> sesame_core::Result<TokenResponse> {
        self.grant(
            s,
            TokenRequest::SessionNonce {
                nonce: nonce.to_owned(),
            },
            now,
        )
        .await
    }

    async fn refresh(&self, s: &SqlStore, key: &str, now: i64) -> sesame_core::Result<TokenResponse> {
        self.grant(
            s,
            TokenRequest::SessionKey {
                session_key: key.to_owned(),
                scope: None,
            },
            now,
        )
        .await
    }

    fn claims(&self, token: &str, now: i64) -> serde_json::Map<String, serde_json::Value> {
        token::validate_access_token(ISS, &self.keyring, token, now)
            .expect("a valid access token")
            .claims
    }
}

fn grant_error(r: sesame_core::Result<TokenResponse>) -> String {
    match r {
        Err(Error::InvalidGrant(m)) => m,
        Err(e) => panic!("expected invalid_grant, got {e:?}"),
        Ok(_) => panic!("expected invalid_grant, got tokens"),
    }
}

async fn workload_settings_and_sources_round_trip(s: &SqlStore) {
    let w = world(s).await;
    let t = &w.tenant.id;
    assert_eq!(s.get_workload_settings(t).await.unwrap(), None);
    assert_eq!(
        workload::settings(s, t).await.unwrap(),
        WorkloadSettings::defaults(t)
    );
    let mut settings = WorkloadSettings {
        tenant_id: t.clone(),
        workload_issuer: Some("https://static.example/acme".into()),
        session_max_ttl: 3600,
    };
    s.put_workload_settings(&settings).await.unwrap();
    assert_eq!(
        s.get_workload_settings(t).await.unwrap().as_ref(),
        Some(&settings)
    );
    settings.workload_issuer = None;
    s.put_workload_settings(&settings).await.unwrap();
    assert_eq!(
        s.get_workload_settings(t).await.unwrap().as_ref(),
        Some(&settings)
    );

    let spec = |client: &str| SourceSpec {
        name: "warehouse sync".into(),
        client_id: ClientId::parse(client).unwrap(),
        audiences: vec!["https://warehouse.example".into()],
        scopes: vec!["sync".into()],
        token_ttl: None,
        id: None,
    };
    // The job client lacks the workload-token grant.
    let err = workload::create_source(s, t, spec("job"), 200).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    s.create_client(&client("src", vec![GrantType::WorkloadToken]))
        .await
        .unwrap();
    let source = workload::create_source(s, t, spec("src"), 200).await.unwrap();
    assert_eq!(source.token_ttl, workload::DEFAULT_WORKLOAD_TOKEN_TTL);
    assert_eq!(
        source.resource_id(),
        format!("ri.sesame.acme.source.{}", source.id)
    );
    assert_eq!(s.get_source(t, &source.id).await.unwrap().as_ref(), Some(&source));
    assert_eq!(
        s.get_source_by_client(t, &source.client_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&source)
    );
    // One source per client.
    let err = workload::create_source(s, t, spec("src"), 200).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let no_audience = SourceSpec {
        audiences: vec![],
        ..spec("src")
    };
    assert!(workload::create_source(s, t, no_audience, 200).await.is_err());
    assert_eq!(s.list_sources(t).await.unwrap(), vec![source.clone()]);
    let other = TenantId::parse("other").unwrap();
    assert!(s.get_source(&other, &source.id).await.unwrap().is_none());
    assert!(s.delete_source(t, &source.id).await.unwrap());
    assert!(!s.delete_source(t, &source.id).await.unwrap());
    assert!(s.get_source(t, &SourceId::generate()).await.unwrap().is_none());
    let _: Vec<Source> = s.list_sources(t).await.unwrap();
}

async fn a_nonce_binds_once_only_for_its_client_and_only_for_60_seconds(s: &SqlStore) {
    let w = world(s).await;
    let late = w
        .create(s, "openid read", None, Some("read"), 1000)
        .await
        .unwrap();
    let err = grant_error(w.bind(s, &late.nonce, 1000 + sessions::NONCE_TTL).await);
    assert!(err.contains("expired"), "{err}");

    let c = w
        .create(s, "openid read", None, Some("read"), 1000)
        .await
        .unwrap();
    assert_eq!(c.session.nonce_expires_at, 1000 + sessions::NONCE_TTL);
    assert!(grant_error(w.bind(s, "not-a-nonce", 1001).await).contains("not valid"));
    // Another client with the grant cannot bind a nonce made for `job`.
    let thief = client("thief", vec![GrantType::SessionNonce]);
    s.create_client(&thief).await.unwrap();
    let stolen = token::issue(
        &w.ctx(s, 1001),
        &thief,
        TokenRequest::SessionNonce {
            nonce: c.nonce.clone(),
        },
    )
    .await;
    assert!(grant_error(stolen).contains("not valid"));

    let bound = w.bind(s, &c.nonce, 1001 + 58).await.unwrap();
    let claims = w.claims(&bound.access_token, 1059);
    assert_eq!(claims["sub"], w.user.id.as_str());
    assert_eq!(claims["act"], serde_json::json!({"sub": "job"}));
    assert_eq!(claims["sid"], c.session.id.as_str());
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["client_id"], "job");
    assert!(bound.refresh_token.is_some(), "the session key");
    assert!(grant_error(w.bind(s, &c.nonce, 1060).await).contains("already used"));
    assert!(sessions::token_session_live(s, &w.tenant.id, &claims, 1060)
        .await
        .unwrap());
}

async fn scopes_never_widen_and_a_session_ends_with_its_lifetime(s: &SqlStore) {
    let w = world(s).await;
    let err = w
        .create(s, "openid read", None, Some("read admin"), 1000)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::InvalidScope(_)), "{err:?}");
    let all = w.create(s, "openid read", None, None, 1000).await.unwrap();
    assert_eq!(all.session.scope, "openid read");
    assert_eq!(all.session.expires_at, 1000 + workload::DEFAULT_SESSION_MAX_TTL);
    let bound = w.bind(s, &all.nonce, 1001).await.unwrap();
    let key = bound.refresh_token.unwrap();
    let wider = w
        .grant(
            s,
            TokenRequest::SessionKey {
                session_key: key.clone(),
                scope: Some("openid read write".into()),
            },
            1002,
        )
        .await;
    assert!(matches!(wider, Err(Error::InvalidScope(_))));
    let narrower = w
        .grant(
            s,
            TokenRequest::SessionKey {
                session_key: key,
                scope: Some("read".into()),
            },
            1002,
        )
        .await
        .unwrap();
    assert_eq!(narrower.scope.as_deref(), Some("read"));
    // A token never outlives its session, and the session ends at its expiry.
    let end = all.session.expires_at;
    let key = narrower.refresh_token.unwrap();
    let last = w.refresh(s, &key, end - 10).await.unwrap();
    assert_eq!(last.expires_in, 10);
    let err = grant_error(w.refresh(s, last.refresh_token.as_deref().unwrap(), end).await);
    assert!(err.contains("ended"), "{err}");
    // A session that would outlive the tenant's maximum is refused.
    let too_long = sessions::create(
        s,
        &w.tenant.id,
        &WorkloadSettings {
            session_max_ttl: 3600,
            ..WorkloadSettings::defaults(&w.tenant.id)
        },
        Creator {
            user: &w.user,
            token_scope: "read",
            parent_sid: None,
        },
        Some(&w.job),
        None,
        Some(3601),
        1000,
    )
    .await;
    assert!(matches!(too_long, Err(Error::InvalidRequest(_))));
}

async fn keys_rotate_and_a_retry_in_30_seconds_gets_the_same_answer(s: &SqlStore) {
    let w = world(s).await;
    let c = w.create(s, "read", None, None, 1000).await.unwrap();
    let k0 = w.bind(s, &c.nonce, 1000).await.unwrap().refresh_token.unwrap();
    let first = w.refresh(s, &k0, 1100).await.unwrap();
    let k1 = first.refresh_token.clone().unwrap();
    assert_ne!(k0, k1);
    // The answer was lost; the job retries with the same key.
    let retry = w.refresh(s, &k0, 1120).await.unwrap();
    assert_eq!(retry.access_token, first.access_token);
    assert_eq!(retry.refresh_token.as_deref(), Some(k1.as_str()));
    assert_eq!(retry.expires_in, first.expires_in - 20);
    // The next key works; after it, the first key is unknown.
    let second = w.refresh(s, &k1, 1130).await.unwrap();
    assert!(grant_error(w.refresh(s, &k0, 1131).await).contains("not valid"));
    // The previous key again after the grace window: a copy exists, the session is revoked.
    let k2 = second.refresh_token.unwrap();
    let err = grant_error(w.refresh(s, &k1, 1130 + 31).await);
    assert!(err.contains("revoked"), "{err}");
    assert!(grant_error(w.refresh(s, &k2, 1162).await).contains("ended"));
    let claims = w.claims(&second.access_token, 1162);
    assert!(!sessions::token_session_live(s, &w.tenant.id, &claims, 1162)
        .await
        .unwrap());
}

async fn one_child_per_session_and_none_for_a_child(s: &SqlStore) {
    let w = world(s).await;
    let parent = w.create(s, "read write", None, None, 1000).await.unwrap();
    let child = w
        .create(s, "read", Some(&parent.session.id), None, 1000)
        .await
        .unwrap();
    assert_eq!(
        child.session.parent_id.as_deref(),
        Some(parent.session.id.as_str())
    );
    assert!(child.session.expires_at <= parent.session.expires_at);
    let second = w.create(s, "read", Some(&parent.session.id), None, 1000).await;
    assert!(matches!(second, Err(Error::Refused(_))), "{:?}", second.err());
    let grandchild = w.create(s, "read", Some(&child.session.id), None, 1000).await;
    assert!(
        matches!(grandchild, Err(Error::Refused(_))),
        "{:?}",
        grandchild.err()
    );
    // Revoking the parent ends the child too.
    assert!(s
        .revoke_delegated_session(&w.tenant.id, &parent.session.id, Some(&w.user.id), 1001)
        .await
        .unwrap());
    let c = s
        .get_delegated_session(&w.tenant.id, &child.session.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.revoked_at, Some(1001));
}

async fn revocation_by_owner_or_admin_and_of_a_disabled_person(s: &SqlStore) {
    let w = world(s).await;
    let a = w.create(s, "read", None, None, 1000).await.unwrap();
    let b = w.create(s, "read", None, None, 1000).await.unwrap();
    let ka = w.bind(s, &a.nonce, 1000).await.unwrap();
    let mine = s
        .list_delegated_sessions(&w.tenant.id, Some(&w.user.id), 1001)
        .await
        .unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|x| x.user_id == w.user.id));
    // Someone else cannot revoke it, and learns nothing.
    let mallory = UserId::generate();
    assert!(!s
        .revoke_delegated_session(&w.tenant.id, &a.session.id, Some(&mallory), 1001)
        .await
        .unwrap());
    assert!(s
        .revoke_delegated_session(&w.tenant.id, &a.session.id, Some(&w.user.id), 1001)
        .await
        .unwrap());
    assert!(grant_error(w.refresh(s, ka.refresh_token.as_deref().unwrap(), 1002).await).contains("ended"));
    let claims = w.claims(&ka.access_token, 1002);
    assert!(!sessions::token_session_live(s, &w.tenant.id, &claims, 1002)
        .await
        .unwrap());
    // An administrator (no owner filter).
    assert!(s
        .revoke_delegated_session(&w.tenant.id, &b.session.id, None, 1003)
        .await
        .unwrap());
    assert!(grant_error(w.bind(s, &b.nonce, 1004).await).contains("ended"));
    // Disabling the person revokes every session of theirs.
    let c = w.create(s, "read", None, None, 1005).await.unwrap();
    sesame_core::admin::set_user_disabled(s, &w.tenant.id, w.user.id.as_str(), true, 1006)
        .await
        .unwrap();
    let c = s
        .get_delegated_session(&w.tenant.id, &c.session.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.revoked_at, Some(1006));
    assert!(s
        .list_delegated_sessions(&w.tenant.id, None, 1007)
        .await
        .unwrap()
        .is_empty());
}

async fn ended_sessions_are_purged_and_stay_ended(s: &SqlStore) {
    let w = world(s).await;
    let old = w.create(s, "openid read", None, None, 1000).await.unwrap();
    let bound = w.bind(s, &old.nonce, 1001).await.unwrap();
    let young = w.create(s, "openid read", None, None, 5000).await.unwrap();
    let end = old.session.expires_at;
    assert_eq!(
        s.purge_delegated_sessions(end).await.unwrap(),
        0,
        "not before its end"
    );
    assert_eq!(s.purge_delegated_sessions(end + 1).await.unwrap(), 1);
    assert!(s
        .get_delegated_session(&w.tenant.id, &old.session.id)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .get_delegated_session(&w.tenant.id, &young.session.id)
        .await
        .unwrap()
        .is_some());
    // The purged session's key gets nothing, and its token reads as ended.
    let key = bound.refresh_token.unwrap();
    assert!(w.refresh(s, &key, end + 2).await.is_err());
    let mut claims = serde_json::Map::new();
    claims.insert("sid".into(), old.session.id.clone().into());
    claims.insert("act".into(), serde_json::json!({"sub": "job"}));
    claims.insert("sub".into(), old.session.user_id.to_string().into());
    assert!(!sessions::token_session_live(s, &w.tenant.id, &claims, 1002)
        .await
        .unwrap());
}

macro_rules! both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = sesame_store::testing::TestDb::sqlite();
                    let store = sesame_store::SqlStore::connect(&db.url).await.unwrap();
                    super::$case(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(db) = sesame_store::testing::TestDb::postgres().await else { return };
                    let store = sesame_store::SqlStore::connect(&db.url).await.unwrap();
                    assert_eq!(sesame_core::store::Store::backend(&store), "postgres");
                    super::$case(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

both_stores!(
    ended_sessions_are_purged_and_stay_ended,
    workload_settings_and_sources_round_trip,
    a_nonce_binds_once_only_for_its_client_and_only_for_60_seconds,
    scopes_never_widen_and_a_session_ends_with_its_lifetime,
    keys_rotate_and_a_retry_in_30_seconds_gets_the_same_answer,
    one_child_per_session_and_none_for_a_child,
    revocation_by_owner_or_admin_and_of_a_disabled_person,
);
