//! The `tfplugin6.Provider` gRPC service: looks up the type a request names and hands it to the
//! typed code through the dynamic wrappers. Every answer carries diagnostics; an unknown type
//! name is a diagnostic too, never a panic.

// tonic's service trait fixes `Result<_, Status>` as every method's return type.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::diag::Diagnostics;
use super::proto::{self, provider_server};
use super::resource::{DynDataSource, DynProvider, DynResource, Function};
use super::value;

/// Everything the provider serves, by full type name (`ebssnap_policy`).
pub struct Registry {
    pub provider: Arc<dyn DynProvider>,
    pub resources: BTreeMap<String, Arc<dyn DynResource>>,
    pub data_sources: BTreeMap<String, Arc<dyn DynDataSource>>,
    pub functions: BTreeMap<String, Arc<dyn Function>>,
}

impl Registry {
    fn resource(&self, name: &str, diags: &mut Diagnostics) -> Option<Arc<dyn DynResource>> {
        let r = self.resources.get(name).cloned();
        if r.is_none() {
            diags.root_error(
                "Unknown resource type",
                format!("this provider has no resource type {name:?}"),
            );
        }
        r
    }
    fn data_source(&self, name: &str, diags: &mut Diagnostics) -> Option<Arc<dyn DynDataSource>> {
        let d = self.data_sources.get(name).cloned();
        if d.is_none() {
            diags.root_error(
                "Unknown data source",
                format!("this provider has no data source {name:?}"),
            );
        }
        d
    }

    /// Capabilities: plan destroy (so a destroy plan reaches us and we can answer it with null).
    fn capabilities() -> proto::ServerCapabilities {
        proto::ServerCapabilities {
            plan_destroy: true,
            get_provider_schema_optional: false,
            move_resource_state: false,
            generate_resource_config: false,
        }
    }

    pub fn provider_schema(&self) -> proto::get_provider_schema::Response {
        proto::get_provider_schema::Response {
            provider: Some(self.provider.schema().to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(n, r)| (n.clone(), r.schema().to_proto()))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(n, d)| (n.clone(), d.schema().to_proto()))
                .collect(),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(Self::capabilities()),
            functions: self
                .functions
                .iter()
                .map(|(n, f)| (n.clone(), f.definition()))
                .collect(),
            list_resource_schemas: self
                .resources
                .iter()
                .filter_map(|(n, r)| r.list_schema().map(|s| (n.clone(), s.to_proto())))
                .collect(),
        }
    }
}

pub struct ProviderService {
    pub registry: Arc<Registry>,
    /// Set by StopProvider (Ctrl-C in Terraform); long operations may look at it.
    pub stop: Arc<tokio::sync::Notify>,
}

fn ok<T>(t: T) -> Result<Response<T>, Status> {
    Ok(Response::new(t))
}

fn identity_value(i: Option<&proto::ResourceIdentityData>) -> Option<&proto::DynamicValue> {
    i.and_then(|i| i.identity_data.as_ref())
}

#[tonic::async_trait]
impl provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        _r: Request<proto::get_metadata::Request>,
    ) -> Result<Response<proto::get_metadata::Response>, Status> {
        use proto::get_metadata as m;
        let reg = &self.registry;
        ok(m::Response {
            server_capabilities: Some(Registry::capabilities()),
            diagnostics: vec![],
            data_sources: reg
                .data_sources
                .keys()
                .map(|n| m::DataSourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            resources: reg
                .resources
                .keys()
                .map(|n| m::ResourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            functions: reg
                .functions
                .keys()
                .map(|n| m::FunctionMetadata { name: n.clone() })
                .collect(),
            list_resources: reg
                .resources
                .iter()
                .filter(|(_, r)| r.list_schema().is_some())
                .map(|(n, _)| m::ListResourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
        })
    }

    async fn get_provider_schema(
        &self,
        _r: Request<proto::get_provider_schema::Request>,
    ) -> Result<Response<proto::get_provider_schema::Response>, Status> {
        ok(self.registry.provider_schema())
    }

    async fn get_resource_identity_schemas(
        &self,
        _r: Request<proto::get_resource_identity_schemas::Request>,
    ) -> Result<Response<proto::get_resource_identity_schemas::Response>, Status> {
        ok(proto::get_resource_identity_schemas::Response {
            identity_schemas: self
                .registry
                .resources
                .iter()
                .map(|(n, r)| (n.clone(), r.identity_schema().to_proto()))
                .collect(),
            diagnostics: vec![],
        })
    }

    async fn validate_provider_config(
        &self,
        r: Request<proto::validate_provider_config::Request>,
    ) -> Result<Response<proto::validate_provider_config::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        self.registry
            .provider
            .validate(&mut diags, r.config.as_ref())
            .await;
        ok(proto::validate_provider_config::Response {
            diagnostics: diags.to_proto(),
        })
    }

    async fn validate_resource_config(
        &self,
        r: Request<proto::validate_resource_config::Request>,
    ) -> Result<Response<proto::validate_resource_config::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(res) = self.registry.resource(&r.type_name, &mut diags) {
            res.validate(&mut diags, r.config.as_ref()).await;
        }
        ok(proto::validate_resource_config::Response {
            diagnostics: diags.to_proto(),
        })
    }

    async fn validate_data_resource_config(
        &self,
        r: Request<proto::validate_data_resource_config::Request>,
    ) -> Result<Response<proto::validate_data_resource_config::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(d) = self.registry.data_source(&r.type_name, &mut diags) {
            d.validate(&mut diags, r.config.as_ref()).await;
        }
        ok(proto::validate_data_resource_config::Response {
            diagnostics: diags.to_proto(),
        })
    }

    async fn upgrade_resource_state(
        &self,
        r: Request<proto::upgrade_resource_state::Request>,
    ) -> Result<Response<proto::upgrade_resource_state::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut upgraded = None;
        if let Some(res) = self.registry.resource(&r.type_name, &mut diags) {
            let json = r.raw_state.map(|s| s.json).unwrap_or_default();
            upgraded = res.upgrade(&mut diags, r.version, &json);
        }
        ok(proto::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: diags.to_proto(),
        })
    }

    async fn upgrade_resource_identity(
        &self,
        r: Request<proto::upgrade_resource_identity::Request>,
    ) -> Result<Response<proto::upgrade_resource_identity::Response>, Status> {
        // Identity is at version 0: the stored identity is already current.
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut upgraded = None;
        if self.registry.resource(&r.type_name, &mut diags).is_some() {
            let json = r.raw_identity.map(|s| s.json).unwrap_or_default();
            match serde_json::from_slice::<serde_json::Value>(&json) {
                Ok(tree) => {
                    upgraded = Some(proto::ResourceIdentityData {
                        identity_data: Some(value::encode_tree(tree)),
                    })
                }
                Err(e) => diags.root_error("Malformed identity in state", e.to_string()),
            }
        }
        ok(proto::upgrade_resource_identity::Response {
            upgraded_identity: upgraded,
            diagnostics: diags.to_proto(),
        })
    }

    async fn configure_provider(
        &self,
        r: Request<proto::configure_provider::Request>,
    ) -> Result<Response<proto::configure_provider::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        self.registry
            .provider
            .configure(&mut diags, r.terraform_version, r.config.as_ref())
            .await;
        ok(proto::configure_provider::Response {
            diagnostics: diags.to_proto(),
        })
    }

    async fn read_resource(
        &self,
        r: Request<proto::read_resource::Request>,
    ) -> Result<Response<proto::read_resource::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut resp = proto::read_resource::Response {
            private: r.private.clone(),
            ..Default::default()
        };
        if let Some(res) = self.registry.resource(&r.type_name, &mut diags) {
            let out = res.read(&mut diags, r.current_state.as_ref()).await;
            resp.new_state = out.state;
            resp.new_identity = out.identity.or(r.current_identity);
        }
        resp.diagnostics = diags.to_proto();
        ok(resp)
    }

    async fn plan_resource_change(
        &self,
        r: Request<proto::plan_resource_change::Request>,
    ) -> Result<Response<proto::plan_resource_change::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut resp = proto::plan_resource_change::Response {
            planned_private: r.prior_private.clone(),
            ..Default::default()
        };
        if let Some(res) = self.registry.resource(&r.type_name, &mut diags) {
            let out = res
                .plan(
                    &mut diags,
                    r.prior_state.as_ref(),
                    r.proposed_new_state.as_ref(),
                    r.config.as_ref(),
                )
                .await;
            resp.planned_state = out.state;
            resp.requires_replace = out.requires_replace.iter().map(|p| p.to_proto()).collect();
            resp.planned_identity = out.identity.or(r.prior_identity);
        }
        resp.diagnostics = diags.to_proto();
        ok(resp)
    }

    async fn apply_resource_change(
        &self,
        r: Request<proto::apply_resource_change::Request>,
    ) -> Result<Response<proto::apply_resource_change::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut resp = proto::apply_resource_change::Response {
            private: r.planned_private.clone(),
            ..Default::default()
        };
        if let Some(res) = self.registry.resource(&r.type_name, &mut diags) {
            let out = res
                .apply(
                    &mut diags,
                    r.prior_state.as_ref(),
                    r.planned_state.as_ref(),
                    r.config.as_ref(),
                )
                .await;
            resp.new_state = out.state;
            resp.new_identity = out.identity;
        }
        resp.diagnostics = diags.to_proto();
        ok(resp)
    }

    async fn import_resource_state(
        &self,
        r: Request<proto::import_resource_state::Request>,
    ) -> Result<Response<proto::import_resource_state::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut imported = Vec::new();
        if let Some(res) = self.registry.resource(&r.type_name, &mut diags) {
            let out = res
                .import(&mut diags, r.id, identity_value(r.identity.as_ref()))
                .await;
            if let Some(state) = out.state {
                imported.push(proto::import_resource_state::ImportedResource {
                    type_name: r.type_name.clone(),
                    state: Some(state),
                    private: vec![],
                    identity: out.identity,
                });
            }
        }
        ok(proto::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: diags.to_proto(),
            deferred: None,
        })
    }

    async fn read_data_source(
        &self,
        r: Request<proto::read_data_source::Request>,
    ) -> Result<Response<proto::read_data_source::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut state = None;
        if let Some(d) = self.registry.data_source(&r.type_name, &mut diags) {
            state = d.read(&mut diags, r.config.as_ref()).await;
        }
        ok(proto::read_data_source::Response {
            state,
            diagnostics: diags.to_proto(),
            deferred: None,
        })
    }

    type ListResourceStream = BoxStream<proto::list_resource::Event>;

    async fn list_resource(
        &self,
        r: Request<proto::list_resource::Request>,
    ) -> Result<Response<Self::ListResourceStream>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        let mut events = Vec::new();
        if let Some(res) = self.registry.resource(&r.type_name, &mut diags) {
            let limit = usize::try_from(r.limit)
                .ok()
                .filter(|l| *l > 0)
                .unwrap_or(usize::MAX);
            for (name, identity, object) in res.list(&mut diags, r.config.as_ref(), limit).await {
                events.push(proto::list_resource::Event {
                    identity: Some(identity),
                    display_name: name,
                    resource_object: r.include_resource_object.then_some(object),
                    diagnostic: vec![],
                });
            }
        }
        if !diags.items.is_empty() {
            events.push(proto::list_resource::Event {
                diagnostic: diags.to_proto(),
                ..Default::default()
            });
        }
        let stream = futures::stream::iter(events.into_iter().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn validate_list_resource_config(
        &self,
        r: Request<proto::validate_list_resource_config::Request>,
    ) -> Result<Response<proto::validate_list_resource_config::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(res) = self.registry.resource(&r.type_name, &mut diags) {
            res.validate_list(&mut diags, r.config.as_ref()).await;
        }
        ok(proto::validate_list_resource_config::Response {
            diagnostics: diags.to_proto(),
        })
    }

    async fn get_functions(
        &self,
        _r: Request<proto::get_functions::Request>,
    ) -> Result<Response<proto::get_functions::Response>, Status> {
        ok(proto::get_functions::Response {
            functions: self
                .registry
                .functions
                .iter()
                .map(|(n, f)| (n.clone(), f.definition()))
                .collect(),
            diagnostics: vec![],
        })
    }

    async fn call_function(
        &self,
        r: Request<proto::call_function::Request>,
    ) -> Result<Response<proto::call_function::Response>, Status> {
        let r = r.into_inner();
        let fail = |text: String, arg: Option<i64>| {
            ok(proto::call_function::Response {
                result: None,
                error: Some(proto::FunctionError {
                    text,
                    function_argument: arg,
                }),
            })
        };
        let Some(f) = self.registry.functions.get(&r.name) else {
            return fail(format!("this provider has no function {:?}", r.name), None);
        };
        let mut args = Vec::with_capacity(r.arguments.len());
        for (i, a) in r.arguments.iter().enumerate() {
            match value::decode_tree(Some(a)) {
                Ok(v) => args.push(v),
                Err(e) => return fail(e, i64::try_from(i).ok()),
            }
        }
        match f.call(args) {
            Ok(v) => ok(proto::call_function::Response {
                result: Some(value::encode_tree(v)),
                error: None,
            }),
            Err(e) => fail(e.text, e.argument),
        }
    }

    async fn stop_provider(
        &self,
        _r: Request<proto::stop_provider::Request>,
    ) -> Result<Response<proto::stop_provider::Response>, Status> {
        self.stop.notify_waiters();
        ok(proto::stop_provider::Response {
            error: String::new(),
        })
    }
}
