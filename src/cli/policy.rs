//! `vcm policy eval`: evaluates a Rego policy offline (no server), against an input document
//! or a would-be request, so operators can test their policies in their own CI.
//!
//! Exit code: 0 allowed, 1 denied, 2 a usage error or a policy, data or input that cannot be
//! loaded (clap exits 2 on usage errors too).

use std::{io::Read as _, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::OutputFormat;
use crate::{
    config::policy::PolicyConfig,
    domain::Role,
    policy::{Decision, InputPrincipal, Policy, PolicyInput, Usage},
};

/// `vcm policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Evaluate a policy against an input document (`--input`) or a would-be request
    /// (`--action`, `--role`, …) and print the decision. Exit code: 0 allowed, 1 denied, 2 an
    /// error.
    Eval(EvalArgs),
}

/// `vcm policy eval` flags.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A .rego file, or a directory whose *.rego files are all loaded; repeat for more.
    #[arg(long = "policy", value_name = "FILE|DIR", required = true)]
    pub policies: Vec<PathBuf>,
    /// The data document (JSON, or YAML for .yaml/.yml), e.g. per-team settings.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Time limit of the evaluation, as `[policy] timeout_ms`.
    #[arg(long, value_name = "MS", default_value_t = PolicyConfig::default().timeout_ms)]
    pub timeout_ms: u64,
    /// A whole input document (JSON, version 1; `-` reads stdin) instead of the request flags.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = [
            "action", "role", "subject", "name", "team", "claims", "request", "cluster", "usage",
            "time",
        ]
    )]
    pub input: Option<PathBuf>,
    /// The request's action: cluster.create, cluster.update, cluster.delete,
    /// cluster.kubeconfig, token.create, token.revoke.
    #[arg(long, required_unless_present = "input")]
    pub action: Option<String>,
    /// The caller's role: admin, developer, ci or viewer.
    #[arg(long, required_unless_present = "input", value_parser = parse_role)]
    pub role: Option<Role>,
    /// The caller's subject; its prefix gives `principal.kind` (token:, oidc:, sa:, cert:, …).
    #[arg(long, default_value = "token:policy-eval")]
    pub subject: String,
    /// The caller's name, for people [default: the subject].
    #[arg(long)]
    pub name: Option<String>,
    /// The caller's team.
    #[arg(long)]
    pub team: Option<String>,
    /// OIDC claims, a JSON object (or @FILE).
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub claims: Option<serde_json::Value>,
    /// The request body, JSON (or @FILE), e.g. '{"size": "large", "ttl": "2h"}'.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub request: Option<serde_json::Value>,
    /// The existing cluster, JSON as `vcm cluster get -o json` prints it (or @FILE).
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub cluster: Option<serde_json::Value>,
    /// The caller's usage, JSON (or @FILE): team_live_clusters, principal_live_clusters,
    /// team_ttl_hours, principal_ttl_hours.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub usage: Option<serde_json::Value>,
    /// The time of the request, RFC 3339 (e.g. 2026-03-07T10:00:00Z) [default: now].
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub time: Option<String>,
}

/// Runs a `vcm policy` command; errors are printed here, as exit code 2.
pub fn run(cmd: PolicyCmd, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let PolicyCmd::Eval(args) = cmd;
    let decision = match eval(&args) {
        Ok(decision) => decision,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    print!("{}", render(&decision, output)?);
    Ok(if decision.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn eval(args: &EvalArgs) -> anyhow::Result<Decision> {
    let config = PolicyConfig {
        paths: args.policies.clone(),
        data: args.data.clone(),
        timeout_ms: args.timeout_ms,
        ..PolicyConfig::default()
    };
    let input = args.input_document()?;
    let policy = Policy::load(&config)?;
    Ok(policy.evaluate(&input))
}

/// `allow`, or `deny` and one message a line; JSON and YAML: `{allowed, messages}`.
fn render(decision: &Decision, output: OutputFormat) -> anyhow::Result<String> {
    let value = serde_json::json!({
        "allowed": decision.is_allowed(),
        "messages": decision.messages(),
    });
    Ok(match output {
        OutputFormat::Table if decision.is_allowed() => "allow\n".to_owned(),
        OutputFormat::Table => {
            let lines: String = decision
                .messages()
                .iter()
                .map(|m| format!("  - {m}\n"))
                .collect();
            format!("deny\n{lines}")
        }
        OutputFormat::Json => format!("{value}\n"),
        OutputFormat::Yaml => serde_yaml_ng::to_string(&value)?,
    })
}

// === impl EvalArgs ===

impl EvalArgs {
    /// The input document: `--input`, or one built from the request flags.
    fn input_document(&self) -> anyhow::Result<PolicyInput> {
        if let Some(path) = &self.input {
            let text = read_arg_file(path)?;
            return serde_json::from_str(&text).with_context(|| {
                format!(
                    "input {}: not a version-1 input document (see docs/POLICY.md)",
                    path.display()
                )
            });
        }
        let (Some(action), Some(role)) = (&self.action, self.role) else {
            anyhow::bail!("give --input, or --action and --role");
        };
        let mut principal = InputPrincipal::new(
            &self.subject,
            self.name.as_deref().unwrap_or(&self.subject),
            role,
            self.team.clone(),
        );
        if let Some(claims) = &self.claims {
            principal.claims = claims
                .as_object()
                .cloned()
                .context("--claims: must be a JSON object")?;
        }
        let mut input = PolicyInput::new(principal, action.clone());
        input.request = self.request.clone();
        input.cluster = self.cluster.clone();
        if let Some(usage) = &self.usage {
            input.usage = Some(
                serde_json::from_value::<Usage>(usage.clone())
                    .context("--usage: not a usage object")?,
            );
        }
        if let Some(time) = &self.time {
            input.time = time.clone();
        }
        Ok(input)
    }
}

fn read_arg_file(path: &std::path::Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the input from stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("input {}: cannot read it", path.display()))
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: admin, developer, ci or viewer"))
}

/// JSON text, or `@FILE` for the JSON in a file.
fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    let text = match s.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        None => s.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))
}

fn parse_time(s: &str) -> Result<String, String> {
    s.parse::<jiff::Timestamp>()
        .map(|_| s.to_owned())
        .map_err(|e| format!("not an RFC 3339 time (2026-03-07T10:00:00Z): {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};

    fn mk_args(args: &[&str]) -> Result<EvalArgs, clap::Error> {
        let argv = ["vcm", "policy", "eval", "--policy", "p.rego"];
        let cli = <Cli as clap::Parser>::try_parse_from(argv.iter().chain(args))?;
        let Command::Policy(PolicyCmd::Eval(args)) = cli.command else {
            panic!("expected policy eval, got {:?}", cli.command);
        };
        Ok(args)
    }

    #[test]
    fn the_request_flags_build_the_input_document() {
        // Arrange
        let args = mk_args(&[
            "--action",
            "cluster.create",
            "--role",
            "ci",
            "--team",
            "web",
            "--subject",
            "oidc:github/repo:org/app",
            "--claims",
            r#"{"repository": "org/app"}"#,
            "--request",
            r#"{"size": "large"}"#,
            "--time",
            "2026-03-07T10:00:00Z",
        ])
        .unwrap();

        // Act
        let input = serde_json::to_value(args.input_document().unwrap()).unwrap();

        // Assert
        assert_eq!(input["principal"]["kind"], "oidc");
        assert_eq!(input["principal"]["role"], "ci");
        assert_eq!(input["principal"]["team"], "web");
        assert_eq!(input["principal"]["claims"]["repository"], "org/app");
        assert_eq!(input["request"]["size"], "large");
        assert_eq!(input["time"], "2026-03-07T10:00:00Z");
        assert_eq!(input["version"], 1);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let cases: [(&[&str], &str); 5] = [
            (&["--role", "ci"], "no action and no input"),
            (
                &["--action", "cluster.create", "--role", "root"],
                "an unknown role",
            ),
            (
                &["--action", "x", "--role", "ci", "--request", "{"],
                "a request that is not JSON",
            ),
            (
                &["--action", "x", "--role", "ci", "--time", "monday"],
                "a time that is not RFC 3339",
            ),
            (
                &["--input", "in.json", "--action", "cluster.create"],
                "both an input and flags",
            ),
        ];
        for (args, reason) in cases {
            assert!(mk_args(args).is_err(), "{reason}");
        }
    }

    #[test]
    fn the_decision_renders_as_text_and_json() {
        let denied = Decision::Deny(vec!["too big".into(), "too long".into()]);

        assert_eq!(
            render(&Decision::Allow, OutputFormat::Table).unwrap(),
            "allow\n"
        );
        assert_eq!(
            render(&denied, OutputFormat::Table).unwrap(),
            "deny\n  - too big\n  - too long\n"
        );
        assert_eq!(
            render(&denied, OutputFormat::Json).unwrap(),
            "{\"allowed\":false,\"messages\":[\"too big\",\"too long\"]}\n"
        );
    }

    #[test]
    fn an_input_file_and_a_broken_policy_give_exit_codes_1_and_2() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.rego");
        std::fs::write(
            &good,
            "package vcm\n\ndeny contains \"no\" if input.action == \"cluster.delete\"\n",
        )
        .unwrap();
        let broken = dir.path().join("broken.rego");
        std::fs::write(&broken, "package vcm\n\ndeny contains").unwrap();
        let input = dir.path().join("in.json");
        std::fs::write(
            &input,
            r#"{"version": 1, "action": "cluster.delete",
                "principal": {"subject": "token:t-1", "name": "x", "kind": "token",
                              "role": "ci"}}"#,
        )
        .unwrap();
        let eval = |policy: &PathBuf| {
            let args = EvalArgs {
                policies: vec![policy.clone()],
                input: Some(input.clone()),
                ..mk_args(&["--input", "-"]).unwrap()
            };
            run(PolicyCmd::Eval(args), OutputFormat::Json).unwrap()
        };

        // Act + Assert
        assert_eq!(eval(&good), ExitCode::from(1));
        assert_eq!(eval(&broken), ExitCode::from(2));
    }
}
