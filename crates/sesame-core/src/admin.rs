//! Operations behind the admin API and the start-up bootstrap: the rules for creating tenants
//! and clients, rotating secrets and keys. Key generation is CPU work (RSA takes tens of
//! milliseconds), so it is split from the store writes for the caller to run off the async path.

use crate::crypto::MasterKey;
use crate::ids::{ClientId, TenantId, UserId, Username};
use crate::keys::new_stored_key;
use crate::model::{Client, ClientType, GrantType, KeyState, SigningAlg, StoredKey, Tenant, User};
use crate::secret::Secret;
use crate::store::Store;
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

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
    pub allowed_scopes: Vec<String>,
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
    pub signing_alg: Option<SigningAlg>,
    pub access_token_ttl: Option<i64>,
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
    let secret = (client_type == ClientType::Confidential).then(Secret::generate);
    let client_id = match spec.client_id {
        Some(id) => id,
        None => ClientId::parse(&B64.encode(crate::crypto::random_bytes::<12>()))?,
    };
    let grant_types = spec.grant_types.unwrap_or_else(|| match client_type {
        ClientType::Confidential => vec![GrantType::ClientCredentials],
        ClientType::Public => vec![],
    });
    let client = Client {
        tenant_id: tenant.clone(),
        name: spec.name.unwrap_or_else(|| client_id.to_string()),
        client_id,
        client_type,
        secret_hash: secret.as_ref().map(Secret::hash),
        grant_types,
        redirect_uris: spec.redirect_uris,
        allowed_scopes: spec.allowed_scopes,
        allowed_audiences: spec.allowed_audiences,
        signing_alg: spec.signing_alg,
        access_token_ttl: spec.access_token_ttl,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    client.validate()?;
    store.create_client(&client).await?;
    Ok((client, secret))
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
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Option<String>>, D::Error> {
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
