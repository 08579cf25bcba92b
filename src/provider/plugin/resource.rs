//! What a provider, a resource, a data source and a function implement, typed; and the dynamic
//! wrappers the server calls, which decode Terraform's values into the typed state, encode the
//! answers, and turn every decoding problem into a diagnostic.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use super::diag::{AttributePath, Diagnostics};
use super::proto::{self, DynamicValue};
use super::schema::{IdentitySchema, Schema};
use super::value;

/// A resource's identity: its identity attributes by name (all strings).
pub type Identity = BTreeMap<String, String>;

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    type Config: DeserializeOwned + Send;
    fn schema(&self) -> Schema;
    async fn validate(&self, diags: &mut Diagnostics, config: Self::Config);
    async fn configure(
        &self,
        diags: &mut Diagnostics,
        terraform_version: String,
        config: Self::Config,
    );
}

/// A managed resource. `None` results mean "failed" when `diags` holds an error; `read`
/// returning `None` without an error means the object is gone.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    type State: Serialize + DeserializeOwned + Send + Sync;
    fn schema(&self) -> Schema;
    fn identity_schema(&self) -> IdentitySchema;
    /// The identity of a state, when its identifying attributes are known.
    fn identity(&self, state: &Self::State) -> Option<Identity>;
    /// The import id (`terraform import` syntax) an identity stands for.
    fn import_id(&self, identity: &Identity) -> Result<String, String>;

    async fn validate(&self, diags: &mut Diagnostics, config: Self::State);
    async fn read(&self, diags: &mut Diagnostics, state: Self::State) -> Option<Self::State>;
    async fn plan_create(
        &self,
        diags: &mut Diagnostics,
        proposed: Self::State,
        config: Self::State,
    ) -> Option<Self::State>;
    /// The planned state and the attributes whose change forces replacement.
    async fn plan_update(
        &self,
        diags: &mut Diagnostics,
        prior: Self::State,
        proposed: Self::State,
        config: Self::State,
    ) -> Option<(Self::State, Vec<AttributePath>)>;
    async fn create(
        &self,
        diags: &mut Diagnostics,
        planned: Self::State,
        config: Self::State,
    ) -> Option<Self::State>;
    async fn update(
        &self,
        diags: &mut Diagnostics,
        prior: Self::State,
        planned: Self::State,
        config: Self::State,
    ) -> Option<Self::State>;
    async fn destroy(&self, diags: &mut Diagnostics, prior: Self::State) -> Option<()>;
    async fn import(&self, diags: &mut Diagnostics, id: String) -> Option<Self::State>;

    /// The `config {}` block of the list resource of the same name (`terraform query`), if any.
    fn list_schema(&self) -> Option<Schema> {
        None
    }
    async fn validate_list(&self, _diags: &mut Diagnostics, _config: Json) {}
    /// Every object the list config matches, at most `limit`.
    async fn list(
        &self,
        diags: &mut Diagnostics,
        _config: Json,
        _limit: usize,
    ) -> Vec<Self::State> {
        diags.root_error_short("This resource type cannot be listed");
        Vec::new()
    }
}

#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    type State: Serialize + DeserializeOwned + Send + Sync;
    fn schema(&self) -> Schema;
    async fn validate(&self, diags: &mut Diagnostics, config: Self::State);
    async fn read(&self, diags: &mut Diagnostics, config: Self::State) -> Option<Self::State>;
}

/// An error of a provider function, optionally blaming one argument (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub text: String,
    pub argument: Option<i64>,
}

/// A provider-defined function (`provider::ebssnap::NAME(...)`). Arguments and result are in
/// the intermediate JSON tree; Terraform never passes null or unknown arguments unless the
/// definition allows them (ours do not).
pub trait Function: Send + Sync + 'static {
    fn definition(&self) -> proto::Function;
    fn call(&self, args: Vec<Json>) -> Result<Json, FunctionError>;
}

fn decode_or_diag<T: DeserializeOwned>(
    diags: &mut Diagnostics,
    what: &str,
    dv: Option<&DynamicValue>,
) -> Option<Option<T>> {
    match value::decode(dv) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.root_error(format!("Invalid {what} from Terraform"), e);
            None
        }
    }
}

fn encode_or_diag<T: Serialize>(diags: &mut Diagnostics, t: Option<&T>) -> Option<DynamicValue> {
    match value::encode(t) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.root_error("Provider produced a value it cannot encode", e);
            None
        }
    }
}

fn identity_data(id: Option<Identity>) -> Option<proto::ResourceIdentityData> {
    id.map(|m| proto::ResourceIdentityData {
        identity_data: Some(value::encode_tree(Json::Object(
            m.into_iter().map(|(k, v)| (k, Json::String(v))).collect(),
        ))),
    })
}

/// What a plan or an apply answers.
pub struct Planned {
    pub state: Option<DynamicValue>,
    pub requires_replace: Vec<AttributePath>,
    pub identity: Option<proto::ResourceIdentityData>,
}

impl Planned {
    fn empty() -> Self {
        Planned {
            state: None,
            requires_replace: vec![],
            identity: None,
        }
    }
}

type Three<S> = (Option<S>, Option<S>, Option<S>);

/// Prior state, the new (proposed or planned) state and the configuration of a plan or apply.
fn decode_three<S: DeserializeOwned>(
    diags: &mut Diagnostics,
    prior: Option<&DynamicValue>,
    new: (&str, Option<&DynamicValue>),
    config: Option<&DynamicValue>,
) -> Option<Three<S>> {
    let prior = decode_or_diag::<S>(diags, "prior state", prior);
    let new_state = decode_or_diag::<S>(diags, new.0, new.1);
    let config = decode_or_diag::<S>(diags, "configuration", config);
    Some((prior?, new_state?, config?))
}

/// The dynamic face of a [`Resource`].
#[async_trait]
pub trait DynResource: Send + Sync {
    fn schema(&self) -> Schema;
    fn identity_schema(&self) -> IdentitySchema;
    fn list_schema(&self) -> Option<Schema>;
    async fn validate(&self, diags: &mut Diagnostics, config: Option<&DynamicValue>);
    fn upgrade(&self, diags: &mut Diagnostics, version: i64, json: &[u8]) -> Option<DynamicValue>;
    async fn read(&self, diags: &mut Diagnostics, state: Option<&DynamicValue>) -> Planned;
    async fn plan(
        &self,
        diags: &mut Diagnostics,
        prior: Option<&DynamicValue>,
        proposed: Option<&DynamicValue>,
        config: Option<&DynamicValue>,
    ) -> Planned;
    async fn apply(
        &self,
        diags: &mut Diagnostics,
        prior: Option<&DynamicValue>,
        planned: Option<&DynamicValue>,
        config: Option<&DynamicValue>,
    ) -> Planned;
    async fn import(
        &self,
        diags: &mut Diagnostics,
        id: String,
        identity: Option<&DynamicValue>,
    ) -> Planned;
    async fn validate_list(&self, diags: &mut Diagnostics, config: Option<&DynamicValue>);
    /// (display name, identity, object) of every listed object.
    async fn list(
        &self,
        diags: &mut Diagnostics,
        config: Option<&DynamicValue>,
        limit: usize,
    ) -> Vec<(String, proto::ResourceIdentityData, DynamicValue)>;
}

fn known_identity<R: Resource>(r: &R, state: Option<&R::State>) -> Option<Identity> {
    state.and_then(|s| r.identity(s))
}

#[async_trait]
impl<R: Resource> DynResource for R {
    fn schema(&self) -> Schema {
        Resource::schema(self)
    }
    fn identity_schema(&self) -> IdentitySchema {
        Resource::identity_schema(self)
    }
    fn list_schema(&self) -> Option<Schema> {
        Resource::list_schema(self)
    }

    async fn validate(&self, diags: &mut Diagnostics, config: Option<&DynamicValue>) {
        if let Some(Some(c)) = decode_or_diag::<R::State>(diags, "configuration", config) {
            Resource::validate(self, diags, c).await;
        }
    }

    fn upgrade(&self, diags: &mut Diagnostics, version: i64, json: &[u8]) -> Option<DynamicValue> {
        let current = Resource::schema(self).version;
        if json.is_empty() {
            diags.root_error_short("Upgrading from a pre-0.12 (flatmap) state is not supported");
            return None;
        }
        if version > current {
            diags.root_error(
                "State from a newer provider",
                format!("the state has schema version {version}, this provider knows up to {current}: use the provider version that wrote it"),
            );
            return None;
        }
        let tree = match serde_json::from_slice::<Json>(json) {
            Ok(t) => t,
            Err(e) => {
                diags.root_error("Malformed state", e.to_string());
                return None;
            }
        };
        match value::decode_json::<R::State>(tree) {
            Ok(s) => encode_or_diag(diags, Some(&s)),
            Err(e) => {
                diags.root_error("State does not match the schema", e);
                None
            }
        }
    }

    async fn read(&self, diags: &mut Diagnostics, state: Option<&DynamicValue>) -> Planned {
        let mut out = Planned::empty();
        let Some(Some(s)) = decode_or_diag::<R::State>(diags, "state", state) else {
            out.state = encode_or_diag::<R::State>(diags, None);
            return out;
        };
        let new = Resource::read(self, diags, s).await;
        out.identity = identity_data(known_identity(self, new.as_ref()));
        out.state = encode_or_diag(diags, new.as_ref());
        out
    }

    async fn plan(
        &self,
        diags: &mut Diagnostics,
        prior: Option<&DynamicValue>,
        proposed: Option<&DynamicValue>,
        config: Option<&DynamicValue>,
    ) -> Planned {
        let mut out = Planned::empty();
        let Some((prior, proposed, config)) =
            decode_three::<R::State>(diags, prior, ("proposed state", proposed), config)
        else {
            return out;
        };
        let planned = match (prior, proposed, config) {
            // Destroy: nothing to plan.
            (_, None, _) => None,
            (None, Some(p), Some(c)) => Resource::plan_create(self, diags, p, c).await,
            (Some(prior), Some(p), Some(c)) => {
                match Resource::plan_update(self, diags, prior, p, c).await {
                    Some((s, replace)) => {
                        out.requires_replace = replace;
                        Some(s)
                    }
                    None => None,
                }
            }
            (_, Some(_), None) => {
                diags.root_error_short("Terraform sent a plan without a configuration");
                None
            }
        };
        out.identity = identity_data(known_identity(self, planned.as_ref()));
        out.state = encode_or_diag(diags, planned.as_ref());
        out
    }

    async fn apply(
        &self,
        diags: &mut Diagnostics,
        prior: Option<&DynamicValue>,
        planned: Option<&DynamicValue>,
        config: Option<&DynamicValue>,
    ) -> Planned {
        let mut out = Planned::empty();
        let Some((prior, planned, config)) =
            decode_three::<R::State>(diags, prior, ("planned state", planned), config)
        else {
            return out;
        };
        let new = match (prior, planned) {
            (Some(prior), None) => {
                Resource::destroy(self, diags, prior).await;
                None
            }
            (None, None) => None,
            (None, Some(p)) => {
                let c = config.unwrap_or_default_state(diags);
                match c {
                    Some(c) => Resource::create(self, diags, p, c).await,
                    None => None,
                }
            }
            (Some(prior), Some(p)) => {
                let c = config.unwrap_or_default_state(diags);
                match c {
                    Some(c) => Resource::update(self, diags, prior, p, c).await,
                    None => None,
                }
            }
        };
        out.identity = identity_data(known_identity(self, new.as_ref()));
        out.state = encode_or_diag(diags, new.as_ref());
        out
    }

    async fn import(
        &self,
        diags: &mut Diagnostics,
        id: String,
        identity: Option<&DynamicValue>,
    ) -> Planned {
        let mut out = Planned::empty();
        let id = if id.is_empty() {
            let Some(Some(ident)) = decode_or_diag::<Identity>(diags, "identity", identity) else {
                diags.root_error_short("Import needs an id or an identity");
                return out;
            };
            match Resource::import_id(self, &ident) {
                Ok(id) => id,
                Err(e) => {
                    diags.root_error("Invalid import identity", e);
                    return out;
                }
            }
        } else {
            id
        };
        let s = Resource::import(self, diags, id).await;
        out.identity = identity_data(known_identity(self, s.as_ref()));
        out.state = s.as_ref().and_then(|s| encode_or_diag(diags, Some(s)));
        out
    }

    async fn validate_list(&self, diags: &mut Diagnostics, config: Option<&DynamicValue>) {
        match value::decode_tree(config) {
            Ok(tree) => Resource::validate_list(self, diags, tree).await,
            Err(e) => diags.root_error("Invalid list configuration from Terraform", e),
        }
    }

    async fn list(
        &self,
        diags: &mut Diagnostics,
        config: Option<&DynamicValue>,
        limit: usize,
    ) -> Vec<(String, proto::ResourceIdentityData, DynamicValue)> {
        let tree = match value::decode_tree(config) {
            Ok(t) => t,
            Err(e) => {
                diags.root_error("Invalid list configuration from Terraform", e);
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for s in Resource::list(self, diags, tree, limit).await {
            let Some(ident) = Resource::identity(self, &s) else {
                continue;
            };
            let name = match Resource::import_id(self, &ident) {
                Ok(n) => n,
                Err(_) => continue,
            };
            let (Some(data), Some(obj)) =
                (identity_data(Some(ident)), encode_or_diag(diags, Some(&s)))
            else {
                continue;
            };
            out.push((name, data, obj));
        }
        out
    }
}

/// `Some(config)`, or an error when Terraform sent none (it always does for create/update).
trait ConfigOrDiag<T> {
    fn unwrap_or_default_state(self, diags: &mut Diagnostics) -> Option<T>;
}

impl<T> ConfigOrDiag<T> for Option<T> {
    fn unwrap_or_default_state(self, diags: &mut Diagnostics) -> Option<T> {
        if self.is_none() {
            diags.root_error_short("Terraform sent an apply without a configuration");
        }
        self
    }
}

/// The dynamic face of a [`DataSource`].
#[async_trait]
pub trait DynDataSource: Send + Sync {
    fn schema(&self) -> Schema;
    async fn validate(&self, diags: &mut Diagnostics, config: Option<&DynamicValue>);
    async fn read(
        &self,
        diags: &mut Diagnostics,
        config: Option<&DynamicValue>,
    ) -> Option<DynamicValue>;
}

#[async_trait]
impl<D: DataSource> DynDataSource for D {
    fn schema(&self) -> Schema {
        DataSource::schema(self)
    }
    async fn validate(&self, diags: &mut Diagnostics, config: Option<&DynamicValue>) {
        if let Some(Some(c)) = decode_or_diag::<D::State>(diags, "configuration", config) {
            DataSource::validate(self, diags, c).await;
        }
    }
    async fn read(
        &self,
        diags: &mut Diagnostics,
        config: Option<&DynamicValue>,
    ) -> Option<DynamicValue> {
        let Some(Some(c)) = decode_or_diag::<D::State>(diags, "configuration", config) else {
            return None;
        };
        let s = DataSource::read(self, diags, c).await?;
        encode_or_diag(diags, Some(&s))
    }
}

/// The dynamic face of a [`Provider`].
#[async_trait]
pub trait DynProvider: Send + Sync {
    fn schema(&self) -> Schema;
    async fn validate(&self, diags: &mut Diagnostics, config: Option<&DynamicValue>);
    async fn configure(
        &self,
        diags: &mut Diagnostics,
        version: String,
        config: Option<&DynamicValue>,
    );
}

#[async_trait]
impl<P: Provider> DynProvider for P {
    fn schema(&self) -> Schema {
        Provider::schema(self)
    }
    async fn validate(&self, diags: &mut Diagnostics, config: Option<&DynamicValue>) {
        if let Some(Some(c)) = decode_or_diag::<P::Config>(diags, "provider configuration", config)
        {
            Provider::validate(self, diags, c).await;
        }
    }
    async fn configure(
        &self,
        diags: &mut Diagnostics,
        version: String,
        config: Option<&DynamicValue>,
    ) {
        if let Some(Some(c)) = decode_or_diag::<P::Config>(diags, "provider configuration", config)
        {
            Provider::configure(self, diags, version, c).await;
        }
    }
}
