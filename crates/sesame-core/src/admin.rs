//! Operations behind the admin API and the start-up bootstrap: the rules for creating tenants
//! and clients, rotating secrets and keys. Key generation is CPU work (RSA takes tens of
//! milliseconds), so it is split from the store writes for the caller to run off the async path.

use crate::crypto::MasterKey;
use crate::ids::{ClientId, TenantId, UserId, Username};
use crate::keys::new_stored_key;
use crate::model::{
    BrowserSession, Client, ClientType, Consent, GrantType, KeyState, SigningAlg, StoredKey, Tenant, User,
};
use crate::secret::Secret;
use crate::store::Store;
use crate::{Error, Result};

/// How long JWKS answers may be cached (`Cache-Control: max-age`). A `next` key must have been
/// published this long before it may sign, so that relying parties have fetched it.
pub const JWKS_MAX_AGE: i64 = 300;

/// How long after a rotation a retired key stays published beyond the longest token lifetime:
/// replicas may sign with the old key until they notice the rotation.
const RETIRE_MARGIN: i64 = 60;

/// Key states a fresh tenant starts with for each algorithm.
const INITIAL_KEY_STATES: [KeyState; 2] = [KeyState::Active, KeyState::Next];

/// An active and a next key for every algorithm.
pub fn initial_keys(master: &MasterKey, tenant: &TenantId, now: i64) -> Result<Vec<StoredKey>> {
    let mut keys = Vec::new();
    for alg in SigningAlg::ALL {
        for state in INITIAL_KEY_STATES {
            keys.push(new_stored_key(master, tenant, alg, state, now)?);
        }
    }
    Ok(keys)
}

pub async fn create_tenant(store: &dyn Store, tenant: &Tenant, keys: &[StoredKey]) -> Result<()> {
    tenant.validate()?;
    store.create_tenant(tenant, keys).await
}

pub async fn require_tenant(store: &dyn Store, id: &TenantId) -> Result<Tenant> {
    store
        .get_tenant(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("tenant '{id}' does not exist")))
}

/// Changes to a tenant's presentation and sign-in lifetimes: an absent field stays;
/// `"logo_url": null` removes the logo and `"display_name": null` restores the default (the
/// tenant id).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    #[serde(default, deserialize_with = "present")]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub logo_url: Option<Option<String>>,
    pub session_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
}

impl TenantPatch {
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none()
            && self.logo_url.is_none()
            && self.session_ttl.is_none()
            && self.refresh_token_ttl.is_none()
    }

    pub fn apply(self, tenant: &mut Tenant) {
        if let Some(name) = self.display_name {
            tenant.display_name = name.unwrap_or_else(|| tenant.id.as_str().to_owned());
        }
        if let Some(logo) = self.logo_url {
            tenant.logo_url = logo;
        }
        if let Some(ttl) = self.session_ttl {
            tenant.session_ttl = ttl;
        }
        if let Some(ttl) = self.refresh_token_ttl {
            tenant.refresh_token_ttl = ttl;
        }
    }
}

pub async fn update_tenant(store: &dyn Store, id: &TenantId, patch: TenantPatch) -> Result<Tenant> {
    if patch.is_empty() {
        return Err(Error::invalid_request(
            "nothing to change: give display_name, logo_url, session_ttl or refresh_token_ttl",
        ));
    }
    let mut tenant = require_tenant(store, id).await?;
    patch.apply(&mut tenant);
    tenant.validate()?;
    if !store.update_tenant(&tenant).await? {
        return Err(Error::NotFound(format!("tenant '{id}' does not exist")));
    }
    Ok(tenant)
}

pub async fn require_client(store: &dyn Store, tenant: &TenantId, id: &ClientId) -> Result<Client> {
    store
        .get_client(tenant, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("client '{id}' does not exist in tenant '{tenant}'")))
}

/// What an admin asks for when creating a client; unset fields take defaults.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    pub client_id: Option<ClientId>,
    pub name: Option<String>,
    pub client_type: Option<ClientType>,
    pub grant_types: Option<Vec<GrantType>>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Defaults to true; a public client cannot turn it off.
    pub require_pkce: Option<bool>,
    #[serde(default)]
    pub first_party: bool,
    #[serde(default)]
    pub refresh_without_offline_access: bool,
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
    pub signing_alg: Option<SigningAlg>,
    pub access_token_ttl: Option<i64>,
    #[serde(default)]
    pub introspect_any: bool,
    /// RFC 7591 §2: `client_secret_basic` (the default for a confidential client; `client_secret_post`
    /// works the same), `private_key_jwt` (needs `jwks`, `jwks_uri` or `trust_policy`; no secret
    /// is made) or `none`.
    pub token_endpoint_auth_method: Option<String>,
    /// A JWKS document (object or JSON text) for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    /// `private_key_jwt` with outside tokens: the name of a trust policy of the tenant.
    pub trust_policy: Option<String>,
    #[serde(default)]
    pub token_exchange_impersonation: bool,
}

/// A JWKS given as an object or as its JSON text, as text.
fn json_text(v: &serde_json::Value) -> Result<String> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        o @ serde_json::Value::Object(_) => Ok(o.to_string()),
        _ => Err(Error::invalid_request(
            "jwks must be a JWKS object or its JSON text",
        )),
    }
}

/// A client may name only a trust policy of its own tenant that exists. (Deleting a policy that
/// a client names is refused by the store: see `TrustStore::delete_trust_policy`.)
pub async fn require_named_policy(store: &dyn Store, client: &Client) -> Result<()> {
    let Some(name) = &client.trust_policy else {
        return Ok(());
    };
    if store.get_trust_policy(&client.tenant_id, name).await?.is_none() {
        return Err(Error::InvalidRequest(format!(
            "trust_policy '{}' does not exist in tenant '{}'",
            name.escape_debug(),
            client.tenant_id
        )));
    }
    Ok(())
}

/// Creates a client; returns it with its secret in the clear (confidential clients only), the
/// one time the secret is ever shown.
pub async fn create_client(
    store: &dyn Store,
    tenant: &TenantId,
    spec: ClientSpec,
    now: i64,
) -> Result<(Client, Option<Secret>)> {
    require_tenant(store, tenant).await?;
    let client_type = spec.client_type.unwrap_or(ClientType::Confidential);
    let has_keys = spec.jwks.is_some() || spec.jwks_uri.is_some() || spec.trust_policy.is_some();
    match spec.token_endpoint_auth_method.as_deref() {
        None => {}
        Some("private_key_jwt") if has_keys => {}
        Some("private_key_jwt") => {
            return Err(Error::invalid_request(
                "private_key_jwt needs jwks, jwks_uri or trust_policy",
            ))
        }
        Some("client_secret_basic" | "client_secret_post") if client_type == ClientType::Confidential && !has_keys => {}
        Some("none") if client_type == ClientType::Public => {}
        // client_secret_jwt is not offered: Sesame keeps only a hash of the secret, and an HMAC
        // needs the secret itself.
        Some(other) => {
            return Err(Error::InvalidRequest(format!(
                "token_endpoint_auth_method '{}' does not fit this client (client_secret_basic, client_secret_post, private_key_jwt, none)",
                other.escape_debug()
            )))
        }
    }
    let secret = (client_type == ClientType::Confidential && !has_keys).then(Secret::generate);
    let client_id = match spec.client_id {
        Some(id) => id,
        None => ClientId::parse(&crate::crypto::random_id::<12>())?,
    };
    // A client with redirect URIs signs people in; one without is a service.
    let grant_types = spec.grant_types.unwrap_or_else(|| {
        if !spec.redirect_uris.is_empty() {
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        } else if client_type == ClientType::Confidential {
            vec![GrantType::ClientCredentials]
        } else {
            vec![]
        }
    });
    let client = Client {
        tenant_id: tenant.clone(),
        name: spec.name.unwrap_or_else(|| client_id.to_string()),
        client_id,
        client_type,
        secret_hash: secret.as_ref().map(Secret::hash),
        grant_types,
        redirect_uris: spec.redirect_uris,
        post_logout_redirect_uris: spec.post_logout_redirect_uris,
        require_pkce: spec.require_pkce.unwrap_or(true),
        first_party: spec.first_party,
        refresh_without_offline_access: spec.refresh_without_offline_access,
        backchannel_logout_uri: spec.backchannel_logout_uri,
        allowed_scopes: spec.allowed_scopes,
        allowed_audiences: spec.allowed_audiences,
        signing_alg: spec.signing_alg,
        access_token_ttl: spec.access_token_ttl,
        introspect_any: spec.introspect_any,
        jwks: spec.jwks.map(|j| json_text(&j)).transpose()?,
        jwks_uri: spec.jwks_uri,
        trust_policy: spec.trust_policy,
        token_exchange_impersonation: spec.token_exchange_impersonation,
        disabled: false,
        // A client created again with an old id does not revive the old one's tokens.
        revoked_before: now,
        created_at: now,
        updated_at: now,
    };
    client.validate()?;
    require_named_policy(store, &client).await?;
    store.create_client(&client).await?;
    Ok((client, secret))
}

/// Changes to a client: an absent field stays as it is; a list replaces the whole list;
/// `"signing_alg": null` and `"access_token_ttl": null` return to the tenant's defaults.
/// The client id, type, secret and disabled state have operations of their own.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub allowed_scopes: Option<Vec<String>>,
    pub allowed_audiences: Option<Vec<String>>,
    pub require_pkce: Option<bool>,
    pub first_party: Option<bool>,
    pub refresh_without_offline_access: Option<bool>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    pub backchannel_logout_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub signing_alg: Option<Option<SigningAlg>>,
    #[serde(default, deserialize_with = "present")]
    pub access_token_ttl: Option<Option<i64>>,
    pub introspect_any: Option<bool>,
    /// `null` removes it. Only for a client that authenticates with keys (`private_key_jwt`).
    #[serde(default, deserialize_with = "present")]
    pub jwks: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "present")]
    pub jwks_uri: Option<Option<String>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    pub trust_policy: Option<Option<String>>,
    pub token_exchange_impersonation: Option<bool>,
}

impl ClientPatch {
    pub fn is_empty(&self) -> bool {
        let ClientPatch {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            allowed_scopes,
            allowed_audiences,
            require_pkce,
            first_party,
            refresh_without_offline_access,
            backchannel_logout_uri,
            signing_alg,
            access_token_ttl,
            introspect_any,
            jwks,
            jwks_uri,
            trust_policy,
            token_exchange_impersonation,
        } = self;
        name.is_none()
            && redirect_uris.is_none()
            && post_logout_redirect_uris.is_none()
            && grant_types.is_none()
            && allowed_scopes.is_none()
            && allowed_audiences.is_none()
            && require_pkce.is_none()
            && first_party.is_none()
            && refresh_without_offline_access.is_none()
            && backchannel_logout_uri.is_none()
            && signing_alg.is_none()
            && access_token_ttl.is_none()
            && introspect_any.is_none()
            && jwks.is_none()
            && jwks_uri.is_none()
            && trust_policy.is_none()
            && token_exchange_impersonation.is_none()
    }

    pub fn apply(self, client: &mut Client) {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *field = v;
            }
        }
        set(&mut client.name, self.name);
        set(&mut client.redirect_uris, self.redirect_uris);
        set(
            &mut client.post_logout_redirect_uris,
            self.post_logout_redirect_uris,
        );
        set(&mut client.grant_types, self.grant_types);
        set(&mut client.allowed_scopes, self.allowed_scopes);
        set(&mut client.allowed_audiences, self.allowed_audiences);
        set(&mut client.require_pkce, self.require_pkce);
        set(&mut client.first_party, self.first_party);
        set(
            &mut client.refresh_without_offline_access,
            self.refresh_without_offline_access,
        );
        set(&mut client.backchannel_logout_uri, self.backchannel_logout_uri);
        set(&mut client.signing_alg, self.signing_alg);
        set(&mut client.access_token_ttl, self.access_token_ttl);
        set(&mut client.introspect_any, self.introspect_any);
        // A JWKS that is not an object or text is refused by `validate` as unparsable.
        set(
            &mut client.jwks,
            self.jwks.map(|j| j.map(|v| json_text(&v).unwrap_or_default())),
        );
        set(&mut client.jwks_uri, self.jwks_uri);
        set(&mut client.trust_policy, self.trust_policy);
        set(
            &mut client.token_exchange_impersonation,
            self.token_exchange_impersonation,
        );
    }
}

/// Changes a client's settings under the same rules as creation (`Client::validate`); a refused
/// change leaves the client as it was.
pub async fn update_client(
    store: &dyn Store,
    tenant: &TenantId,
    id: &ClientId,
    patch: ClientPatch,
    now: i64,
) -> Result<Client> {
    if patch.is_empty() {
        return Err(Error::invalid_request(
            "nothing to change: give at least one client field",
        ));
    }
    let mut client = require_client(store, tenant, id).await?;
    let names_policy = matches!(patch.trust_policy, Some(Some(_)));
    patch.apply(&mut client);
    client.updated_at = now;
    client.validate()?;
    if names_policy {
        require_named_policy(store, &client).await?;
    }
    if !store.update_client(&client).await? {
        return Err(Error::NotFound(format!(
            "client '{id}' does not exist in tenant '{tenant}'"
        )));
    }
    Ok(client)
}

/// Replaces a confidential client's secret; the old one stops working at once.
pub async fn rotate_client_secret(
    store: &dyn Store,
    tenant: &TenantId,
    id: &ClientId,
    now: i64,
) -> Result<(Client, Secret)> {
    let mut client = require_client(store, tenant, id).await?;
    if client.client_type != ClientType::Confidential {
        return Err(Error::invalid_request("a public client has no secret to rotate"));
    }
    if client.uses_private_key_jwt() {
        return Err(Error::invalid_request(
            "a client that authenticates with keys (private_key_jwt) has no secret to rotate",
        ));
    }
    let secret = Secret::generate();
    client.secret_hash = Some(secret.hash());
    client.updated_at = now;
    if !store.update_client(&client).await? {
        return Err(Error::NotFound(format!(
            "client '{id}' does not exist in tenant '{tenant}'"
        )));
    }
    Ok((client, secret))
}

/// Disabling revokes what the client was given, in the store's transaction (see
/// `Store::update_client`); enabling it again revives none of it.
pub async fn set_client_disabled(
    store: &dyn Store,
    tenant: &TenantId,
    id: &ClientId,
    disabled: bool,
    now: i64,
) -> Result<Client> {
    let mut client = require_client(store, tenant, id).await?;
    client.disabled = disabled;
    client.updated_at = now;
    store.update_client(&client).await?;
    Ok(client)
}

/// Checks that `alg`'s next key may be promoted now.
/// Refused while the next key is younger than the JWKS cache lifetime, unless `force`.
pub fn check_rotation(keys: &[StoredKey], alg: SigningAlg, now: i64, force: bool) -> Result<()> {
    let next = keys
        .iter()
        .find(|k| k.alg == alg && k.state == KeyState::Next)
        .ok_or_else(|| Error::Refused(format!("there is no published next {alg} key to promote")))?;
    let published_for = now - next.created_at;
    if published_for < JWKS_MAX_AGE && !force {
        return Err(Error::Refused(format!(
            "the next {alg} key has been published for {published_for} s; relying parties may cache the JWKS \
             for {JWKS_MAX_AGE} s, so rotate after that (or force it)"
        )));
    }
    Ok(())
}

/// Until when a key retired `now` must stay published: past the expiry of every token it may
/// have signed, i.e. the longest access-token lifetime in the tenant plus a margin.
pub async fn retire_until(store: &dyn Store, tenant: &Tenant, now: i64) -> Result<i64> {
    let longest_client = store
        .list_clients(&tenant.id)
        .await?
        .iter()
        .filter_map(|c| c.access_token_ttl)
        .max()
        .unwrap_or(0);
    Ok(now + tenant.access_token_ttl.max(longest_client) + RETIRE_MARGIN)
}

/// Rotates one algorithm's keys: `new_next` must be a freshly generated `next` key.
pub async fn rotate_keys(
    store: &dyn Store,
    tenant: &Tenant,
    alg: SigningAlg,
    new_next: &StoredKey,
    now: i64,
    force: bool,
) -> Result<()> {
    let keys = store.list_keys(&tenant.id).await?;
    check_rotation(&keys, alg, now, force)?;
    let until = retire_until(store, tenant, now).await?;
    store.rotate_keys(&tenant.id, alg, new_next, until, now).await
}

/// A new local account. The password, if any, arrives already hashed (see `password::hash`),
/// because hashing is CPU work for the caller to schedule.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub username: String,
    pub password: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
}

/// Changes to a user's profile: an absent field stays, `null` clears it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    pub email_verified: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub picture: Option<Option<String>>,
}

/// Tells `"field": null` (Some(None)) from an absent field (None).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

pub async fn require_user(store: &dyn Store, tenant: &TenantId, key: &str) -> Result<User> {
    store.get_user(tenant, key).await?.ok_or_else(|| {
        Error::NotFound(format!(
            "user '{}' does not exist in tenant '{tenant}'",
            key.escape_debug()
        ))
    })
}

pub async fn create_user(
    store: &dyn Store,
    tenant: &TenantId,
    spec: UserSpec,
    password_hash: Option<String>,
    now: i64,
) -> Result<User> {
    require_tenant(store, tenant).await?;
    let user = User {
        tenant_id: tenant.clone(),
        id: UserId::generate(),
        username: Username::normalize(&spec.username)?,
        email: spec.email,
        email_verified: spec.email_verified,
        name: spec.name,
        picture: spec.picture,
        disabled: false,
        password_hash,
        created_at: now,
        updated_at: now,
    };
    user.validate()?;
    store.create_user(&user).await?;
    Ok(user)
}

pub async fn update_user(
    store: &dyn Store,
    tenant: &TenantId,
    key: &str,
    change: impl FnOnce(&mut User),
    now: i64,
) -> Result<User> {
    let mut user = require_user(store, tenant, key).await?;
    change(&mut user);
    user.updated_at = now;
    user.validate()?;
    if !store.update_user(&user).await? {
        return Err(Error::NotFound(format!(
            "user '{}' does not exist in tenant '{tenant}'",
            user.username
        )));
    }
    Ok(user)
}

impl UserPatch {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.email_verified.is_none() && self.name.is_none() && self.picture.is_none()
    }

    pub fn apply(self, user: &mut User) {
        if let Some(email) = self.email {
            // A new address is not verified unless the same change says so.
            if email != user.email {
                user.email_verified = false;
            }
            user.email = email;
        }
        if let Some(v) = self.email_verified {
            user.email_verified = v;
        }
        if let Some(name) = self.name {
            user.name = name;
        }
        if let Some(picture) = self.picture {
            user.picture = picture;
        }
    }
}

/// Disables or enables a user. Disabling takes effect at once: the user's browser sessions end
/// and every grant they gave (refresh tokens, and the access tokens issued with them) is revoked.
/// Enabling gives none of that back. Returns the user and the sessions that ended (for
/// back-channel logout).
pub async fn set_user_disabled(
    store: &dyn Store,
    tenant: &TenantId,
    key: &str,
    disabled: bool,
    now: i64,
) -> Result<(User, Vec<BrowserSession>)> {
    // Marked disabled first, so that no sign-in slips in between the revocation and the flag.
    let user = update_user(store, tenant, key, |u| u.disabled = disabled, now).await?;
    let mut ended = Vec::new();
    if disabled {
        ended = end_sessions(store, tenant, &user.id, now).await?;
        store.revoke_user_grants(tenant, &user.id, None, now).await?;
        store
            .revoke_user_delegated_sessions(tenant, &user.id, now)
            .await?;
    }
    Ok((user, ended))
}

/// Ends all of a user's sessions and returns them.
async fn end_sessions(
    store: &dyn Store,
    tenant: &TenantId,
    user: &UserId,
    now: i64,
) -> Result<Vec<BrowserSession>> {
    let sessions = store.list_sessions(tenant, user, now).await?;
    store.delete_user_sessions(tenant, user).await?;
    Ok(sessions)
}

/// Sets a user's password (already hashed, see `password::hash`) and ends their browser
/// sessions, so that whoever knew the old password is signed out. Grants stay.
pub async fn set_user_password(
    store: &dyn Store,
    tenant: &TenantId,
    key: &str,
    password_hash: String,
    now: i64,
) -> Result<(User, Vec<BrowserSession>)> {
    let user = update_user(store, tenant, key, |u| u.password_hash = Some(password_hash), now).await?;
    let ended = end_sessions(store, tenant, &user.id, now).await?;
    Ok((user, ended))
}

/// A user's unexpired browser sessions, newest first.
pub async fn list_user_sessions(
    store: &dyn Store,
    tenant: &TenantId,
    key: &str,
    now: i64,
) -> Result<Vec<BrowserSession>> {
    let user = require_user(store, tenant, key).await?;
    store.list_sessions(tenant, &user.id, now).await
}

/// Ends one of a user's sessions; `NotFound` unless it is an unexpired session of that user.
pub async fn end_user_session(
    store: &dyn Store,
    tenant: &TenantId,
    key: &str,
    id: &str,
    now: i64,
) -> Result<BrowserSession> {
    let user = require_user(store, tenant, key).await?;
    let not_found = || {
        Error::NotFound(format!(
            "user '{}' has no session '{}'",
            user.username,
            id.escape_debug()
        ))
    };
    let sessions = store.list_sessions(tenant, &user.id, now).await?;
    let session = sessions.into_iter().find(|s| s.id == id).ok_or_else(not_found)?;
    if !store.delete_session(tenant, id).await? {
        return Err(not_found());
    }
    Ok(session)
}

/// Ends every session of a user and returns them.
pub async fn end_user_sessions(
    store: &dyn Store,
    tenant: &TenantId,
    key: &str,
    now: i64,
) -> Result<Vec<BrowserSession>> {
    let user = require_user(store, tenant, key).await?;
    end_sessions(store, tenant, &user.id, now).await
}

pub async fn list_user_consents(store: &dyn Store, tenant: &TenantId, key: &str) -> Result<Vec<Consent>> {
    let user = require_user(store, tenant, key).await?;
    store.list_consents(tenant, &user.id).await
}

/// What revoking a consent did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ConsentRevoked {
    pub consent_deleted: bool,
    pub refresh_tokens_revoked: u64,
}

/// Withdraws a user's consent to a client and revokes every grant the user gave that client
/// (as Ory Hydra does), so the client must ask again and holds no tokens meanwhile. `NotFound`
/// when there was neither a consent nor a refresh token to revoke (the revocation runs anyway).
pub async fn revoke_user_consent(
    store: &dyn Store,
    tenant: &TenantId,
    key: &str,
    client: &ClientId,
    now: i64,
) -> Result<ConsentRevoked> {
    let user = require_user(store, tenant, key).await?;
    let consent_deleted = store.delete_consent(tenant, &user.id, client).await?;
    let refresh_tokens_revoked = store
        .revoke_user_grants(tenant, &user.id, Some(client), now)
        .await?;
    if !consent_deleted && refresh_tokens_revoked == 0 {
        return Err(Error::NotFound(format!(
            "user '{}' has no consent or grant for client '{client}'",
            user.username
        )));
    }
    Ok(ConsentRevoked {
        consent_deleted,
        refresh_tokens_revoked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client {
            tenant_id: TenantId::parse("acme").unwrap(),
            client_id: ClientId::parse("web").unwrap(),
            name: "Web".into(),
            client_type: ClientType::Public,
            secret_hash: None,
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            require_pkce: true,
            first_party: false,
            refresh_without_offline_access: false,
            backchannel_logout_uri: None,
            allowed_scopes: vec!["openid".into()],
            allowed_audiences: vec![],
            signing_alg: Some(SigningAlg::ES256),
            access_token_ttl: Some(600),
            introspect_any: false,
            jwks: None,
            jwks_uri: None,
            trust_policy: None,
            token_exchange_impersonation: false,
            disabled: false,
            revoked_before: 0,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn a_client_patch_changes_only_what_it_names() {
        let patch: ClientPatch =
            serde_json::from_str(r#"{"name": "New", "first_party": true, "signing_alg": null}"#).unwrap();
        assert!(!patch.is_empty());
        let mut c = client();
        patch.apply(&mut c);
        assert_eq!((c.name.as_str(), c.first_party), ("New", true));
        assert_eq!(c.signing_alg, None, "null returns to the tenant's algorithm");
        assert_eq!(c.access_token_ttl, Some(600), "absent stays");
        assert_eq!(c.redirect_uris, client().redirect_uris);

        let patch: ClientPatch = serde_json::from_str(r#"{"redirect_uris": []}"#).unwrap();
        let mut c = client();
        patch.apply(&mut c);
        assert!(c.redirect_uris.is_empty(), "a list replaces the whole list");

        assert!(serde_json::from_str::<ClientPatch>("{}").unwrap().is_empty());
        assert!(serde_json::from_str::<ClientPatch>(r#"{"client_type": "confidential"}"#).is_err());
        assert!(serde_json::from_str::<ClientPatch>(r#"{"secret": "x"}"#).is_err());
    }

    #[test]
    fn a_public_client_cannot_patch_pkce_off() {
        let mut c = client();
        serde_json::from_str::<ClientPatch>(r#"{"require_pkce": false}"#)
            .unwrap()
            .apply(&mut c);
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_tenant_patch_clears_with_null() {
        let mut t = Tenant::new(TenantId::parse("acme").unwrap(), 0);
        t.display_name = "Acme".into();
        t.logo_url = Some("https://acme.example/logo.png".into());
        let patch: TenantPatch = serde_json::from_str(r#"{"logo_url": null}"#).unwrap();
        patch.apply(&mut t);
        assert_eq!((t.display_name.as_str(), t.logo_url.as_deref()), ("Acme", None));
        let patch: TenantPatch =
            serde_json::from_str(r#"{"display_name": null, "logo_url": "https://a.example/l.svg"}"#).unwrap();
        patch.apply(&mut t);
        assert_eq!(t.display_name, "acme", "null restores the default name");
        assert_eq!(t.logo_url.as_deref(), Some("https://a.example/l.svg"));
        assert!(serde_json::from_str::<TenantPatch>("{}").unwrap().is_empty());
        assert!(serde_json::from_str::<TenantPatch>(r#"{"signing_alg": "ES256"}"#).is_err());
    }
}
