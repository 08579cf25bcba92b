//! Schemas as the provider declares them (attributes with a type, a constraint and a markdown
//! description; nested blocks), and their protocol form. The generated docs read the same values.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::proto;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeType {
    String,
    Number,
    Bool,
    List(Box<AttributeType>),
    Set(Box<AttributeType>),
    Map(Box<AttributeType>),
    Object(BTreeMap<String, AttributeType>),
}

impl AttributeType {
    /// The type as Terraform's JSON type notation (`"string"`, `["list","string"]`, ...).
    pub fn to_json(&self) -> Json {
        match self {
            AttributeType::String => json!("string"),
            AttributeType::Number => json!("number"),
            AttributeType::Bool => json!("bool"),
            AttributeType::List(t) => json!(["list", t.to_json()]),
            AttributeType::Set(t) => json!(["set", t.to_json()]),
            AttributeType::Map(t) => json!(["map", t.to_json()]),
            AttributeType::Object(fields) => {
                let m: serde_json::Map<String, Json> = fields
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json()))
                    .collect();
                json!(["object", m])
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeConstraint {
    Required,
    Optional,
    /// Set by the user or, when not, by the provider (a default known at plan time or later).
    OptionalComputed,
    Computed,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description {
    pub content: String,
}

impl Description {
    pub fn markdown(s: impl Into<String>) -> Self {
        Description { content: s.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub attr_type: AttributeType,
    pub constraint: AttributeConstraint,
    pub description: Description,
    pub sensitive: bool,
    pub deprecated: bool,
    /// A nested attribute (protocol 6): its own attributes with constraints and descriptions,
    /// instead of a plain `attr_type`. `None` for ordinary attributes.
    pub nested: Option<NestedAttributes>,
}

/// The attributes of a nested attribute, and how it nests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedAttributes {
    pub nesting: Nesting,
    pub attributes: BTreeMap<String, Attribute>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
    Map,
}

/// How a nested block may appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NestedBlock {
    /// Exactly one (a required block).
    Single(Block),
    /// At most one (a list of at most one on the wire).
    Optional(Block),
    List(Block),
    Set(Block),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    pub version: i64,
    pub description: Description,
    pub attributes: BTreeMap<String, Attribute>,
    pub blocks: BTreeMap<String, NestedBlock>,
    pub deprecated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

impl Attribute {
    fn to_proto(&self, name: &str) -> proto::schema::Attribute {
        use AttributeConstraint::*;
        use proto::schema::object::NestingMode;
        // A nested attribute carries its shape in `nested_type` and no `type`.
        let nested_type = self.nested.as_ref().map(|n| proto::schema::Object {
            attributes: n.attributes.iter().map(|(k, a)| a.to_proto(k)).collect(),
            nesting: match n.nesting {
                Nesting::Single => NestingMode::Single,
                Nesting::List => NestingMode::List,
                Nesting::Set => NestingMode::Set,
                Nesting::Map => NestingMode::Map,
            } as i32,
        });
        proto::schema::Attribute {
            name: name.to_string(),
            r#type: if nested_type.is_some() {
                Vec::new()
            } else {
                self.attr_type.to_bytes()
            },
            nested_type,
            description: self.description.content.clone(),
            required: self.constraint == Required,
            optional: matches!(self.constraint, Optional | OptionalComputed),
            computed: matches!(self.constraint, Computed | OptionalComputed),
            sensitive: self.sensitive,
            description_kind: proto::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            write_only: false,
        }
    }
}

impl Block {
    fn to_proto(&self) -> proto::schema::Block {
        use proto::schema::nested_block::NestingMode;
        proto::schema::Block {
            version: self.version,
            attributes: self.attributes.iter().map(|(n, a)| a.to_proto(n)).collect(),
            block_types: self
                .blocks
                .iter()
                .map(|(n, b)| {
                    let (mode, block, min, max) = match b {
                        NestedBlock::Single(b) => (NestingMode::Single, b, 1, 1),
                        NestedBlock::Optional(b) => (NestingMode::List, b, 0, 1),
                        NestedBlock::List(b) => (NestingMode::List, b, 0, 0),
                        NestedBlock::Set(b) => (NestingMode::Set, b, 0, 0),
                    };
                    proto::schema::NestedBlock {
                        type_name: n.clone(),
                        block: Some(block.to_proto()),
                        nesting: mode as i32,
                        min_items: min,
                        max_items: max,
                    }
                })
                .collect(),
            description: self.description.content.clone(),
            description_kind: proto::StringKind::Markdown as i32,
            deprecated: self.deprecated,
        }
    }
}

impl Schema {
    pub fn to_proto(&self) -> proto::Schema {
        proto::Schema {
            version: self.version,
            block: Some(self.block.to_proto()),
        }
    }
}

/// One attribute of a resource's identity (Terraform 1.12+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityAttribute {
    pub name: &'static str,
    pub description: &'static str,
    /// Whether `import { identity = {...} }` must set it.
    pub required: bool,
}

/// A resource's identity: string attributes, version 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySchema {
    pub attributes: Vec<IdentityAttribute>,
}

impl IdentitySchema {
    pub fn to_proto(&self) -> proto::ResourceIdentitySchema {
        proto::ResourceIdentitySchema {
            version: 0,
            identity_attributes: self
                .attributes
                .iter()
                .map(|a| proto::resource_identity_schema::IdentityAttribute {
                    name: a.name.to_string(),
                    r#type: AttributeType::String.to_bytes(),
                    required_for_import: a.required,
                    optional_for_import: !a.required,
                    description: a.description.to_string(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_use_terraforms_json_notation() {
        let t = AttributeType::List(Box::new(AttributeType::Object(BTreeMap::from([(
            "id".to_string(),
            AttributeType::String,
        )]))));
        assert_eq!(
            t.to_bytes(),
            br#"["list",["object",{"id":"string"}]]"#.to_vec()
        );
        assert_eq!(
            AttributeType::Map(Box::new(AttributeType::String)).to_bytes(),
            br#"["map","string"]"#.to_vec()
        );
    }

    #[test]
    fn constraints_and_nesting_map_to_the_protocol() {
        let a = |c| Attribute {
            attr_type: AttributeType::Bool,
            constraint: c,
            description: Description::markdown("d"),
            sensitive: false,
            deprecated: false,
            nested: None,
        };
        let inner = Block::default();
        let s = Schema {
            version: 1,
            block: Block {
                attributes: BTreeMap::from([
                    ("r".to_string(), a(AttributeConstraint::Required)),
                    ("oc".to_string(), a(AttributeConstraint::OptionalComputed)),
                ]),
                blocks: BTreeMap::from([("b".to_string(), NestedBlock::Optional(inner))]),
                ..Block::default()
            },
        }
        .to_proto();
        let b = s.block.unwrap();
        let oc = b.attributes.iter().find(|x| x.name == "oc").unwrap();
        assert!(oc.optional && oc.computed && !oc.required);
        let r = b.attributes.iter().find(|x| x.name == "r").unwrap();
        assert!(r.required && !r.optional && !r.computed);
        assert_eq!(b.block_types[0].max_items, 1);
        assert_eq!(b.block_types[0].min_items, 0);
    }

    #[test]
    fn nested_attributes_carry_their_shape_instead_of_a_type() {
        let leaf = Attribute {
            attr_type: AttributeType::String,
            constraint: AttributeConstraint::Required,
            description: Description::markdown("id"),
            sensitive: false,
            deprecated: false,
            nested: None,
        };
        let nested = Attribute {
            attr_type: AttributeType::String,
            constraint: AttributeConstraint::Optional,
            description: Description::markdown("rules"),
            sensitive: false,
            deprecated: false,
            nested: Some(NestedAttributes {
                nesting: Nesting::List,
                attributes: BTreeMap::from([("id".to_string(), leaf)]),
            }),
        };
        let p = nested.to_proto("rules");
        assert!(p.r#type.is_empty());
        let obj = p.nested_type.unwrap();
        assert_eq!(obj.nesting, proto::schema::object::NestingMode::List as i32);
        assert_eq!(obj.attributes[0].name, "id");
        assert!(obj.attributes[0].required);
        assert_eq!(obj.attributes[0].r#type, br#""string""#.to_vec());
    }
}
