//! Tests of the entry point with a probe module that exercises every path.
use super::*;
use crate::Diff;
use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

/// A module exercising every path of the entry point.
struct Probe;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ProbeOptions {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    count: u32,
}

#[derive(Default, Serialize)]
struct Counted {
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
}

impl Module for Probe {
    const NAME: &'static str = "probe";
    const NO_LOG: &'static [&'static str] = &["password"];
    type Host = ();
    type Options = ProbeOptions;
    type Plan = ProbeOptions;
    type Return = Counted;

    fn plan(options: ProbeOptions, _: &Context, _: &()) -> anyhow::Result<ProbeOptions> {
        match options.action.as_str() {
            "fail" => bail!(
                "wrong password {}",
                options.password.clone().unwrap_or_default()
            ),
            "command" => {
                return Err(anyhow::Error::new(CommandFailed {
                    cmd: "dkms build".into(),
                    rc: 10,
                    stdout: "out\n".into(),
                    stderr: "make failed\n".into(),
                }))
                .context("building");
            }
            "panic" => panic!("boom"),
            _ => {}
        }
        Ok(options)
    }

    fn preview(plan: ProbeOptions, _: &Context) -> Response<Counted> {
        Response {
            changed: true,
            msg: Some(format!("would do {} things", plan.count)),
            diff: Some(Diff::json("things", &"a", &"b")),
            ..Response::default()
        }
    }

    fn apply(plan: ProbeOptions, _: &Context, _: &()) -> anyhow::Result<Response<Counted>> {
        Ok(Response {
            changed: true,
            values: Counted {
                count: Some(plan.count),
            },
            warnings: vec!["careful".into()],
            ..Response::default()
        })
    }
}

fn run_with(args: &str) -> (Value, i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("args");
    std::fs::write(&path, args).expect("write args");
    execute::<Probe>(&["probe".into(), path.into()], &())
}

#[test]
fn argument_problems() {
    let (r, code) = execute::<Probe>(&["probe".into()], &());
    assert_eq!((r["failed"].clone(), code), (json!(true), 1));
    assert!(r["msg"]
        .as_str()
        .unwrap_or("")
        .contains("exactly one argument"));
    let (r, _) = execute::<Probe>(&["probe".into(), "/nonexistent/args".into()], &());
    assert!(r["msg"]
        .as_str()
        .unwrap_or("")
        .starts_with("cannot read the arguments file /nonexistent/args"));
    let (r, _) = run_with("{not json");
    assert!(r["msg"]
        .as_str()
        .unwrap_or("")
        .contains("is not valid JSON"));
    let (r, _) = run_with("[1, 2]");
    assert!(r["msg"].as_str().unwrap_or("").contains("not an array"));
}

#[test]
fn internal_keys_are_ignored_and_unknown_options_listed() {
    let (r, code) = run_with(
        r#"{"count": "3", "_ansible_check_mode": false, "_ansible_future_key": {"x": 1},
            "_ansible_version": "2.19.4", "_ansible_tracebacks_for": []}"#,
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["count"], json!(3));
    assert_eq!(r["warnings"], json!(["careful"]));
    let (r, code) = run_with(r#"{"colour": "red", "size": 1}"#);
    assert_eq!(code, 1);
    assert_eq!(
        r["msg"],
        json!("Unsupported parameters for (probe) module: colour, size. Supported parameters include: action, count, password.")
    );
}

#[test]
fn check_mode_previews_and_diff_only_when_asked() {
    let (r, _) = run_with(r#"{"count": 2, "_ansible_check_mode": true}"#);
    assert_eq!(r["msg"], json!("would do 2 things"));
    assert!(r.get("diff").is_none());
    let (r, _) = run_with(r#"{"count": 2, "_ansible_check_mode": true, "_ansible_diff": true}"#);
    assert_eq!(r["diff"]["after"], json!("\"b\"\n"));
    assert_eq!(r["diff"]["before_header"], json!("things"));
}

#[test]
fn command_failures_carry_their_output() {
    let (r, code) = run_with(r#"{"action": "command"}"#);
    assert_eq!(code, 1);
    assert_eq!(r["rc"], json!(10));
    assert_eq!(r["cmd"], json!("dkms build"));
    assert_eq!(r["stderr"], json!("make failed\n"));
    assert_eq!(
        r["msg"],
        json!("building: `dkms build` failed with rc 10: make failed")
    );
}

#[test]
fn no_log_values_are_masked_everywhere() {
    let (r, _) = run_with(r#"{"action": "fail", "password": "s3cret"}"#);
    let text = r.to_string();
    assert!(!text.contains("s3cret"), "{text}");
    assert_eq!(r["msg"], json!("wrong password ********"));
    assert_eq!(
        r["invocation"]["module_args"]["password"],
        json!("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
    );
}

#[test]
fn a_panic_is_a_failed_result() {
    let (r, code) = run_with(r#"{"action": "panic"}"#);
    assert_eq!(code, 1);
    assert!(
        r["msg"]
            .as_str()
            .unwrap_or("")
            .starts_with("internal error in module probe: boom"),
        "{r}"
    );
}

#[test]
fn bad_types_fail_clearly() {
    let (r, code) = run_with(r#"{"count": "many"}"#);
    assert_eq!(code, 1);
    assert_eq!(
        r["msg"],
        json!(
            "invalid options for probe: option 'count': expected an integer, got string \"many\""
        )
    );
}
