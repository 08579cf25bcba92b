//! `terraform plan` of 200 `ebssnap_target`s against the same plan of 200 `terraform_data`
//! resources (Terraform's own, no provider): what the provider adds. Target: ≤ 2×.
//! `cargo bench --bench provider` (or `make bench`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

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
    for _ in 0..3 {
        xs.push(plan_seconds(&ours, &rc));
        ys.push(plan_seconds(&theirs, &rc));
    }
    xs.sort_by(|p, q| p.partial_cmp(q).unwrap());
    ys.sort_by(|p, q| p.partial_cmp(q).unwrap());
    let (x, y) = (xs[1], ys[1]);
    println!("## Provider: terraform plan of {n} resources (median of 3, -refresh=false)\n");
    println!("| configuration | seconds |");
    println!("|---|---|");
    println!("| {n} × ebssnap_target | {x:.2} |");
    println!("| {n} × terraform_data | {y:.2} |");
    println!(
        "\nRatio: {:.2} (target ≤ 2: {}).",
        x / y,
        if x / y <= 2.0 { "met" } else { "MISSED" }
    );
    std::fs::remove_dir_all(&work).ok();
}
