//! The README's demo command end to end: `scripts/demo.sh` (what `make demo` runs after
//! installing and building) must succeed and show the whole story.

use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_runs_end_to_end() {
    let Some(terraform) = crate::tf::terraform_binary() else {
        return;
    };
    let moto = std::env::var("EBSSNAP_MOTO_SERVER").ok();
    if moto.is_none() && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("EBSSNAP_MOTO_SERVER is not set under CI=true: run through `make test`");
    }
    let Some(moto) = moto else {
        eprintln!("SKIP: EBSSNAP_MOTO_SERVER not set");
        return;
    };
    let python = std::env::var("EBSSNAP_PYTHON").unwrap_or_else(|_| "python3".into());
    // The binaries of this build: <target>/debug/{ebssnap,terraform-provider-ebssnap}.
    let debug = Path::new(env!("CARGO_BIN_EXE_ebssnap")).parent().unwrap();
    let target = debug.parent().unwrap();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.sh"))
        .env("CARGO_TARGET_DIR", target)
        .env("EBSSNAP_MOTO_SERVER", moto)
        .env("EBSSNAP_PYTHON", python)
        .env("EBSSNAP_TERRAFORM", terraform)
        .env("EBSSNAP_DEMO_OUT", crate::cli::tempdir())
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for want in [
        "Apply complete! Resources: 3 added",
        "ebssnap-std/web",
        "5 volume(s) selected by std/web",
        "day-5: created 5",
        "already snapshotted in run day-5",
        "Backup=ebssnap, CostCenter=42, Role=data",
        "deleted: 10, kept: 20",
        "  next: attach it",
        ": Passed in ",
        "1 restore volume(s)",
        "FAILED vol-",
        "ticket snapshot.failed delivered",
        "exit code: 1 (1: a volume failed)",
        "snapshot.failed (error) (Idempotency-Key: std/nightly/day-5; signature: valid)",
        "ticket snapshot.overdue delivered",
        "snapshot.recovered (info)",
        "IncorrectState [volume]",
        "signature: valid",
        "only this ARN goes into the policy's schedule",
        "Destroy complete! Resources: 3 destroyed.",
        "ebssnap schedule groups left: 0; managed snapshots left: 21",
        "ebssnap: migrated 2 stanza(s)",
        "ebssnap: LOSSY web_asg: ignore_retention",
        "| `databases` | `databases/databases` | 14 days | 5 | `cron(0 6 * * ? *)` |",
        "Apply complete! Resources: 4 added",
        "3 volume(s) selected by databases/databases",
        "OK   databases: ebs_snapper 3, generated 3, deployed 3",
        "OK   web_asg: ebs_snapper 2, generated 2, deployed 2",
        "STALE (5 volume(s), 132 GiB)",
        "UNPROTECTED (2 volume(s), 70 GiB)",
        "/coverage.html",
    ] {
        assert!(
            stdout.contains(want),
            "missing {want:?} in:\n{stdout}\n{stderr}"
        );
    }
    // The webhook's token lives in Secrets Manager only: no output shows it.
    assert!(
        !stdout.contains("demo-t0ken") && !stderr.contains("demo-t0ken"),
        "the webhook token leaked:\n{stdout}\n{stderr}"
    );
}
