//! Generates the registry documentation (tfplugindocs' layout) from the schema descriptions and
//! the example files, so the docs cannot say something the schema does not. `make docs` writes
//! them; a test fails when the committed files differ.

use std::path::{Path, PathBuf};

use super::plugin::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, NestedBlock, Schema,
};

use super::{iam_policy, policy, provider_schema, target, volumes};

fn type_name(t: &AttributeType) -> String {
    match t {
        AttributeType::String => "String".into(),
        AttributeType::Number => "Number".into(),
        AttributeType::Bool => "Boolean".into(),
        AttributeType::List(inner) => format!("List of {}", type_name(inner)),
        AttributeType::Set(inner) => format!("Set of {}", type_name(inner)),
        AttributeType::Map(inner) => format!("Map of {}", type_name(inner)),
        AttributeType::Object(_) => "Object".into(),
    }
}

fn attr_line(name: &str, a: &Attribute) -> String {
    let mut t = type_name(&a.attr_type);
    if a.sensitive {
        t.push_str(", Sensitive");
    }
    format!("- `{name}` ({t}) {}\n", a.description.content)
}

fn sorted<T>(m: &std::collections::BTreeMap<String, T>) -> Vec<(&String, &T)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

fn inner_block(n: &NestedBlock) -> (&Block, &'static str, bool) {
    match n {
        NestedBlock::Single(b) => (b, "Block", true),
        NestedBlock::Optional(b) => (b, "Block List, Max: 1", false),
        NestedBlock::List(b) => (b, "Block List", false),
        NestedBlock::Set(b) => (b, "Block Set", false),
    }
}

fn schema_section(
    block: &Block,
    anchor_prefix: &str,
    out: &mut String,
    nested: &mut Vec<(String, Block)>,
) {
    let mut required = String::new();
    let mut optional = String::new();
    let mut read_only = String::new();
    for (name, a) in sorted(&block.attributes) {
        let line = attr_line(name, a);
        match a.constraint {
            AttributeConstraint::Required => required.push_str(&line),
            AttributeConstraint::Optional | AttributeConstraint::OptionalComputed => {
                optional.push_str(&line)
            }
            AttributeConstraint::Computed => read_only.push_str(&line),
        }
    }
    for (name, b) in sorted(&block.blocks) {
        let (inner, kind, req) = inner_block(b);
        let anchor = format!("{anchor_prefix}{name}");
        let line = format!(
            "- `{name}` ({kind}{}) {} (see [below for nested schema](#nestedblock--{anchor}))\n",
            if req { ", Required" } else { "" },
            inner.description.content
        );
        if req {
            required.push_str(&line)
        } else {
            optional.push_str(&line)
        }
        nested.push((anchor, inner.clone()));
    }
    for (title, body) in [
        ("Required", required),
        ("Optional", optional),
        ("Read-Only", read_only),
    ] {
        if !body.is_empty() {
            out.push_str(&format!("### {title}\n\n{body}\n"));
        }
    }
}

fn render_schema(schema: &Schema) -> String {
    let mut out = String::from(
        "<!-- schema generated from the provider's schema by `make docs` -->\n## Schema\n\n",
    );
    let mut nested = Vec::new();
    schema_section(&schema.block, "", &mut out, &mut nested);
    while !nested.is_empty() {
        let (anchor, block) = nested.remove(0);
        out.push_str(&format!(
            "<a id=\"nestedblock--{anchor}\"></a>\n### Nested Schema for `{}`\n\n",
            anchor.replace("--", ".")
        ));
        let mut more = Vec::new();
        schema_section(&block, &format!("{anchor}--"), &mut out, &mut more);
        nested.extend(more);
    }
    out
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel))
        .unwrap_or_else(|_| format!("# missing example: {rel}\n"))
}

fn front_matter(title: &str, description: &str) -> String {
    let first = description
        .split(". ")
        .next()
        .unwrap_or(description)
        .trim_end_matches('.');
    format!("---\npage_title: \"{title}\"\nsubcategory: \"\"\ndescription: |-\n  {first}.\n---\n\n")
}

fn page(
    root: &Path,
    kind: &str,
    type_name: &str,
    schema: &Schema,
    example_dir: &str,
    import: bool,
) -> String {
    let desc = &schema.block.description.content;
    let mut out = front_matter(&format!("{type_name} {kind} - ebssnap"), desc);
    out.push_str(&format!(
        "# {type_name} ({kind})\n\n{desc}\n\n## Example Usage\n\n"
    ));
    let file = if kind == "Data Source" {
        "data-source.tf"
    } else {
        "resource.tf"
    };
    out.push_str(&format!(
        "```terraform\n{}```\n\n",
        read(root, &format!("{example_dir}/{file}"))
    ));
    out.push_str(&render_schema(schema));
    if import {
        out.push_str(&format!(
            "## Import\n\nImport is supported using the following syntax:\n\n\
             In Terraform v1.5.0 and later, the [`import` block](https://developer.hashicorp.com/terraform/language/import) \
             can be used with the `id` attribute, for example:\n\n```terraform\n{}```\n\n\
             In Terraform v1.12.0 and later, the `import` block can be used with the `identity` attribute \
             (the resource's identity is kept in state; `terraform query` finds every existing object, \
             see the list resource of the same name), for example:\n\n```terraform\n{}```\n\n\
             The [`terraform import` command](https://developer.hashicorp.com/terraform/cli/commands/import) can be used, for example:\n\n```shell\n{}```\n",
            read(root, &format!("{example_dir}/import-by-string-id.tf")),
            read(root, &format!("{example_dir}/import-by-identity.tf")),
            read(root, &format!("{example_dir}/import.sh")),
        ));
    }
    out
}

/// A list resource's page (`terraform query`, Terraform 1.14+).
fn list_page(root: &Path, type_name: &str, schema: &Schema) -> String {
    let desc = &schema.block.description.content;
    let mut out = front_matter(&format!("{type_name} List Resource - ebssnap"), desc);
    out.push_str(&format!(
        "# {type_name} (List Resource)\n\n{desc}\n\nUsed by `terraform query` (Terraform 1.14 and later) in a \
         `.tfquery.hcl` file. Each result is shown by its import id and carries the resource's identity; \
         `terraform query -generate-config-out=FILE` writes a resource block and an `import` block for each, \
         see [Adopting existing policies](../guides/provider.md#adopting-existing-policies-with-terraform-query).\n\n\
         ## Example Usage\n\n```terraform\n{}```\n\n",
        read(root, &format!("examples/list-resources/{type_name}/list-resource.tfquery.hcl"))
    ));
    if schema.block.attributes.is_empty() {
        out.push_str("## Schema\n\nThis list resource takes no `config` block.\n");
    } else {
        out.push_str(&render_schema(schema).replacen("## Schema", "## Schema of `config`", 1));
    }
    out
}

/// A type in Terraform's JSON notation, as the docs name it.
fn json_type_name(t: &serde_json::Value) -> String {
    match t {
        serde_json::Value::String(s) if s == "bool" => "Boolean".into(),
        serde_json::Value::String(s) => {
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
        serde_json::Value::Array(a) if a.len() == 2 => {
            let kind = match a[0].as_str() {
                Some("list") => "List",
                Some("set") => "Set",
                Some("map") => "Map",
                _ => "Object",
            };
            format!("{kind} of {}", json_type_name(&a[1]))
        }
        _ => "Dynamic".into(),
    }
}

fn type_of(bytes: &[u8]) -> String {
    serde_json::from_slice(bytes)
        .map(|v| json_type_name(&v))
        .unwrap_or_else(|_| "Dynamic".into())
}

/// A provider function's page.
fn function_page(root: &Path, name: &str, f: &super::plugin::proto::Function) -> String {
    let mut out = format!(
        "---\npage_title: \"{name} function - ebssnap\"\nsubcategory: \"\"\ndescription: |-\n  {}\n---\n\n",
        f.summary
    );
    out.push_str(&format!(
        "# function: {name}\n\n{}\n\n## Example Usage\n\n```terraform\n{}```\n\n## Signature\n\n```text\n",
        f.description,
        read(root, &format!("examples/functions/{name}/function.tf"))
    ));
    let mut params: Vec<String> = f
        .parameters
        .iter()
        .map(|p| format!("{} {}", p.name, type_of(&p.r#type).to_lowercase()))
        .collect();
    if let Some(v) = &f.variadic_parameter {
        params.push(format!(
            "{}... {}",
            v.name,
            type_of(&v.r#type).to_lowercase()
        ));
    }
    let ret = f
        .r#return
        .as_ref()
        .map(|r| type_of(&r.r#type).to_lowercase())
        .unwrap_or_default();
    out.push_str(&format!(
        "{name}({}) {ret}\n```\n\n## Arguments\n\n",
        params.join(", ")
    ));
    for (i, p) in f.parameters.iter().enumerate() {
        out.push_str(&format!(
            "{}. `{}` ({}) {}\n",
            i + 1,
            p.name,
            type_of(&p.r#type),
            p.description
        ));
    }
    if let Some(v) = &f.variadic_parameter {
        out.push_str(&format!(
            "{}. `{}` (Variadic, {}) {}\n",
            f.parameters.len() + 1,
            v.name,
            type_of(&v.r#type),
            v.description
        ));
    }
    out
}

/// What a reader of the registry must know before the example: the provider schedules, the runner
/// snapshots, and the runner is deployed separately.
const INDEX_INTRO: &str = "**Before you start: a runner must exist.** This provider only writes EventBridge Scheduler \
schedules. The snapshots are taken by the ebssnap **runner**, an AWS Lambda function you deploy once per account \
and Region (`ebssnap-runner_<version>_lambda_<arch>.zip` from the [GitHub release](https://github.com/rackerlabs/ebssnap/releases), \
checked against its `SHA256SUMS`), with two IAM roles: its own and the one Scheduler assumes to invoke it, both \
rendered by [`data \"ebssnap_iam_policy\"`](data-sources/iam_policy.md). The provider needs their ARNs \
(`runner_arn`, `scheduler_role_arn`). The [Getting started](guides/getting-started.md) guide deploys all of it \
and proves it works; [Deploying the runner](guides/deployment.md) covers the details, \
[Moving from ebs_snapper](guides/migration.md) the way in from the old tool.";

/// Every generated page: (path relative to the repository root, content).
pub fn render_all(root: &Path) -> Vec<(PathBuf, String)> {
    let provider = provider_schema();
    let mut index = front_matter("ebssnap Provider", &provider.block.description.content);
    index.push_str(&format!(
        "# ebssnap Provider\n\n{}\n\n{INDEX_INTRO}\n\n## Example Usage\n\n```terraform\n{}```\n\n{}",
        provider.block.description.content,
        read(root, "examples/provider/provider.tf"),
        render_schema(&provider)
    ));
    let mut pages = vec![
        (PathBuf::from("docs/index.md"), index),
        (
            PathBuf::from("docs/resources/policy.md"),
            page(
                root,
                "Resource",
                "ebssnap_policy",
                &policy::policy_schema(),
                "examples/resources/ebssnap_policy",
                true,
            ),
        ),
        (
            PathBuf::from("docs/resources/target.md"),
            page(
                root,
                "Resource",
                "ebssnap_target",
                &target::target_schema(),
                "examples/resources/ebssnap_target",
                true,
            ),
        ),
        (
            PathBuf::from("docs/data-sources/coverage.md"),
            page(
                root,
                "Data Source",
                "ebssnap_coverage",
                &super::coverage::coverage_schema(),
                "examples/data-sources/ebssnap_coverage",
                false,
            ),
        ),
        (
            PathBuf::from("docs/data-sources/iam_policy.md"),
            page(
                root,
                "Data Source",
                "ebssnap_iam_policy",
                &iam_policy::iam_policy_schema(),
                "examples/data-sources/ebssnap_iam_policy",
                false,
            ),
        ),
        (
            PathBuf::from("docs/data-sources/restore_points.md"),
            page(
                root,
                "Data Source",
                "ebssnap_restore_points",
                &super::restore_points::restore_points_schema(),
                "examples/data-sources/ebssnap_restore_points",
                false,
            ),
        ),
        (
            PathBuf::from("docs/data-sources/volumes.md"),
            page(
                root,
                "Data Source",
                "ebssnap_volumes",
                &volumes::volumes_schema(),
                "examples/data-sources/ebssnap_volumes",
                false,
            ),
        ),
    ];
    for (name, resource) in [
        (
            "ebssnap_policy",
            &policy::PolicyResource::default() as &dyn super::plugin::resource::DynResource,
        ),
        ("ebssnap_target", &target::TargetResource::default()),
    ] {
        if let Some(schema) = resource.list_schema() {
            let short = name.trim_start_matches("ebssnap_");
            pages.push((
                PathBuf::from(format!("docs/list-resources/{short}.md")),
                list_page(root, name, &schema),
            ));
        }
    }
    for (name, f) in super::functions::all() {
        pages.push((
            PathBuf::from(format!("docs/functions/{name}.md")),
            function_page(root, &name, &f.definition()),
        ));
    }
    pages
}

/// Writes the pages under `root`.
pub fn write_all(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, content) in render_all(root) {
        let path = root.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, content)?;
        written.push(rel);
    }
    Ok(written)
}
