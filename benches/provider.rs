//! `terraform plan` of 200 `ebssnap_target`s against the same plan of 200 `terraform_data`
//! resources (Terraform's own, no provider): what the provider adds. Target: ≤ 1.5× (median of 5). Also the
//! plugin's start (spawn → handshake line) and the provider's own time per request, measured
//! in-process on the same code the gRPC service calls (decode, validate/plan, encode).
//! `cargo bench --bench provider` (or `make bench`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use ebssnap::provider::plugin::proto::DynamicValue;
use ebssnap::provider::plugin::{Diagnostics, value};
use ebssnap::provider::target::TargetState;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|p, q| p.total_cmp(q));
    v[v.len() / 2]
}

/// Spawn → the handshake line on stdout, in milliseconds (median of 30), with AutoMTLS.
fn start_ms(provider: &Path) -> f64 {
    // A throwaway client certificate, as Terraform would pass one.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let mut xs = Vec::new();
    for _ in 0..30 {
        let t0 = Instant::now();
        let mut child = Command::new(provider)
            .env(
                "TF_PLUGIN_MAGIC_COOKIE",
                "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
            )
            .env("PLUGIN_PROTOCOL_VERSIONS", "6")
            .env("PLUGIN_CLIENT_CERT", &cert)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        xs.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(line.starts_with("1|6|unix|"), "{line}");
        // SIGTERM: the provider removes its socket and exits.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
    }
    median(xs)
}

/// The provider's own time for one target's ValidateResourceConfig + PlanResourceChange
/// (without Terraform's round trip), in microseconds (mean over 2,000).
async fn per_request_us() -> (f64, f64) {
    let reg = ebssnap::provider::registry();
    let r = reg.resources["ebssnap_target"].clone();
    let mut tree = serde_json::to_value(TargetState::default()).unwrap();
    tree["policy"] = "std".into();
    tree["name"] = "web".into();
    tree["schedule"] = "cron(0 5 * * ? *)".into();
    tree["retention_days"] = 30.into();
    tree["select"] = serde_json::json!({
        "all_volumes": null, "asg_names": null, "instance_ids": null, "volume_ids": null,
        "volume_tags": null, "instance_names": ["app-*"], "instance_tags": {"Env": "prod"},
        "instance_filters": null
    });
    let config: DynamicValue = value::encode_tree(tree);
    let n = 2000;
    let t0 = Instant::now();
    for _ in 0..n {
        let mut d = Diagnostics::default();
        r.validate(&mut d, Some(&config)).await;
        assert!(!d.has_errors(), "{:?}", d.items);
    }
    let validate = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let t0 = Instant::now();
    for _ in 0..n {
        let mut d = Diagnostics::default();
        let out = r.plan(&mut d, None, Some(&config), Some(&config)).await;
        assert!(out.state.is_some() && !d.has_errors(), "{:?}", d.items);
    }
    let plan = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    (validate, plan)
}

fn terraform() -> String {
    std::env::var("EBSSNAP_TERRAFORM").unwrap_or_else(|_| "terraform".into())
}

fn plan_seconds(dir: &Path, rc: &Path) -> f64 {
    let t0 = Instant::now();
    let out = Command::new(terraform())
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", rc)
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args([
            "plan",
            "-refresh=false",
            "-lock=false",
            "-input=false",
            "-no-color",
        ])
        .output()
        .expect("terraform");
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "plan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("200 to add"));
    secs
}

fn main() {
    let n = 200;
    let work = std::env::temp_dir().join(format!("ebssnap-bench-provider-{}", std::process::id()));
    let (ours, theirs) = (work.join("ebssnap"), work.join("terraform_data"));
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::create_dir_all(&theirs).unwrap();
    let provider_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let rc = work.join("cli.tfrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"registry.terraform.io/rackerlabs/ebssnap\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            provider_dir.display()
        ),
    )
    .unwrap();
    let mut a = String::from(
        "terraform {\n  required_providers {\n    ebssnap = { source = \"rackerlabs/ebssnap\" }\n  }\n}\n\
         provider \"ebssnap\" {\n  runner_arn = \"arn:aws:lambda:us-east-1:123456789012:function:ebssnap\"\n  scheduler_role_arn = \"arn:aws:iam::123456789012:role/s\"\n}\n",
    );
    let mut b = String::new();
    for i in 0..n {
        a.push_str(&format!(
            "resource \"ebssnap_target\" \"t{i}\" {{\n  policy = \"std\"\n  name = \"t{i}\"\n  schedule = \"cron({} 5 * * ? *)\"\n  select {{\n    instance_names = [\"app-{i}-*\"]\n    instance_tags = {{ Env = \"prod\" }}\n  }}\n  retention_days = 30\n}}\n",
            i % 60
        ));
        b.push_str(&format!(
            "resource \"terraform_data\" \"t{i}\" {{\n  input = {{\n    policy = \"std\"\n    name = \"t{i}\"\n    schedule = \"cron({} 5 * * ? *)\"\n    select = {{ instance_names = [\"app-{i}-*\"], instance_tags = {{ Env = \"prod\" }} }}\n    retention_days = 30\n  }}\n}}\n",
            i % 60
        ));
    }
    std::fs::write(ours.join("main.tf"), a).unwrap();
    std::fs::write(theirs.join("main.tf"), b).unwrap();
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for _ in 0..5 {
        xs.push(plan_seconds(&ours, &rc));
        ys.push(plan_seconds(&theirs, &rc));
    }
    let (x, y) = (median(xs), median(ys));
    println!("## Provider: terraform plan of {n} resources (median of 5, -refresh=false)\n");
    println!("| configuration | seconds |");
    println!("|---|---|");
    println!("| {n} × ebssnap_target | {x:.2} |");
    println!("| {n} × terraform_data | {y:.2} |");
    println!(
        "\nRatio: {:.2} (target ≤ 1.5: {}).",
        x / y,
        if x / y <= 1.5 { "met" } else { "MISSED" }
    );
    let provider = provider_dir.join("terraform-provider-ebssnap");
    let start = start_ms(&provider);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (validate, plan) = rt.block_on(per_request_us());
    println!("\n| provider's own cost | value |");
    println!("|---|---|");
    println!("| spawn → handshake line (AutoMTLS, median of 30) | {start:.1} ms |");
    println!("| ValidateResourceConfig of one target | {validate:.1} µs |");
    println!("| PlanResourceChange of one target | {plan:.1} µs |");
    println!(
        "\nPer request < 1 ms: {}.",
        if validate.max(plan) < 1000.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    std::fs::remove_dir_all(&work).ok();
}
