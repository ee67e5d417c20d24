//! Command-line interface: argument parsing and dispatch of `vcm <command>`.

use std::{fmt, net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;

use crate::{
    client::{Client, TlsOptions},
    config::{ConfigOverrides, LogFormat},
};

mod audit;
mod cluster;
mod crd;
mod output;
mod policy;
mod serve;
mod team;
mod token;
mod wait;

pub use audit::AuditCmd;
pub use cluster::ClusterCmd;
pub use crd::CrdCmd;
pub use policy::PolicyCmd;
pub use team::TeamCmd;
pub use token::TokenCmd;

/// `vcm`: temporary Kubernetes clusters for CI/CD, on demand.
#[derive(Debug, Parser)]
#[command(name = "vcm", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalOpts,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts; the client commands use them to reach a server.
#[derive(Args)]
pub struct GlobalOpts {
    /// Output format.
    #[arg(
        long,
        short,
        global = true,
        env = "VCM_OUTPUT",
        value_enum,
        default_value_t
    )]
    pub output: OutputFormat,
    /// Address of the vcm server.
    #[arg(
        long,
        global = true,
        env = "VCM_ADDR",
        default_value = "http://127.0.0.1:8080"
    )]
    pub addr: Url,
    /// API token for the vcm server (prefer VCM_TOKEN or --token-file: a flag shows in the
    /// process list).
    #[arg(long, global = true, env = "VCM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the API token (mode 0600, yours); used when no token is given otherwise.
    #[arg(long, global = true, env = "VCM_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Send the token over plain HTTP to a server that is not on this machine (it can be read
    /// on the way; use https:// instead).
    #[arg(long, global = true, env = "VCM_ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,
    /// PEM CA certificate(s) to trust for an https `--addr`, besides the system's.
    #[arg(long, global = true, env = "VCM_CACERT", value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// PEM client certificate to present (mutual TLS); needs `--client-key`.
    #[arg(long, global = true, env = "VCM_CLIENT_CERT", value_name = "PEM")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `--client-cert`.
    #[arg(long, global = true, env = "VCM_CLIENT_KEY", value_name = "PEM")]
    pub client_key: Option<PathBuf>,
}

/// How command output is rendered on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the vcm server.
    Server(ServerArgs),
    /// Create, inspect and delete clusters (through the server at `--addr`).
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// API tokens (`vcm token create --bootstrap` makes the first admin token offline).
    #[command(subcommand)]
    Token(TokenCmd),
    /// The audit log: `vcm audit list` shows records, `vcm audit verify` walks the chain.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Rego policies: `vcm policy eval` decides a request offline, as the server would.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Teams: `vcm team usage <team>` shows its live clusters against its quota.
    #[command(subcommand)]
    Team(TeamCmd),
    /// Hosts: `vcm host list` shows each host's reachability and use.
    #[command(subcommand)]
    Host(team::HostCmd),
    /// The VirtualCluster CRD: `vcm crd print` writes it for `kubectl apply`.
    #[command(subcommand)]
    Crd(CrdCmd),
    /// Who the server takes you for: subject, role and team of your credential.
    Whoami,
    /// Print the version of this binary.
    Version,
}

/// `vcm server` flags; each one overrides the configuration file and environment.
#[derive(Args)]
pub struct ServerArgs {
    /// TOML configuration file.
    #[arg(long, env = "VCM_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on (plain HTTP: loopback only unless allowed in the configuration;
    /// with `[tls]`, or `--dev` and a self-signed certificate, any address).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded store and local clusters.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter directives, e.g. `info` or `info,vcm=debug` (`RUST_LOG` wins when set).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Development mode, with the embedded defaults: SQLite store and local driver.
    #[arg(long)]
    pub dev: bool,
    /// API token to accept in development mode (visible in the process list: prefer
    /// --dev-token-file).
    #[arg(
        long,
        requires = "dev",
        value_name = "TOKEN",
        conflicts_with = "dev_token_file"
    )]
    pub dev_token: Option<String>,
    /// File holding the API token to accept in development mode (mode 0600, yours).
    #[arg(long, requires = "dev", value_name = "PATH")]
    pub dev_token_file: Option<PathBuf>,
}

/// Runs the parsed command; the exit code says how it went.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Server(args) => serve::serve(args).await,
        Command::Cluster(cmd) => cluster::run(cmd, &cli.global).await,
        Command::Token(cmd) => token::run(cmd, &cli.global).await,
        Command::Team(cmd) => team::run(cmd, &cli.global).await,
        Command::Host(cmd) => team::run_host(cmd, &cli.global).await,
        Command::Policy(cmd) => policy::run(cmd, cli.global.output),
        Command::Audit(cmd) => audit::run(cmd, &cli.global).await,
        Command::Crd(cmd) => crd::run(cmd),
        Command::Whoami => whoami(&cli.global).await,
        Command::Version => print_version(cli.global.output),
    }
}

async fn whoami(global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let me = global.client()?.whoami().await?;
    match global.output {
        OutputFormat::Table => println!(
            "{} ({}), role {}{}",
            me.name,
            me.subject,
            me.role,
            me.team.map(|t| format!(", team {t}")).unwrap_or_default()
        ),
        OutputFormat::Json => println!("{}", serde_json::to_string(&me)?),
        OutputFormat::Yaml => print!("{}", serde_yaml_ng::to_string(&me)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_version(output: OutputFormat) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    let value = serde_json::json!({ "version": version });
    match output {
        OutputFormat::Table => println!("vcm {version}"),
        OutputFormat::Json => println!("{value}"),
        OutputFormat::Yaml => print!("{}", serde_yaml_ng::to_string(&value)?),
    }
    Ok(ExitCode::SUCCESS)
}

// === impl GlobalOpts ===

impl GlobalOpts {
    /// A client of the server at `--addr`, authenticated with `--token` (or `--token-file`),
    /// or with `--client-cert` alone (mutual TLS). A token is never sent over plain HTTP to
    /// another machine unless `--allow-insecure-http` says so.
    pub fn client(&self) -> anyhow::Result<Client> {
        let tls = TlsOptions {
            ca_cert: self.cacert.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        };
        let token = match (
            self.token.clone().filter(|t| !t.trim().is_empty()),
            &self.token_file,
        ) {
            (Some(token), _) => Some(token),
            (None, Some(path)) => Some(crate::fsutil::read_private(path)?),
            (None, None) if tls.has_client_cert() => None,
            (None, None) => anyhow::bail!(
                "no API token: set VCM_TOKEN or VCM_TOKEN_FILE (an admin issues tokens with \
                 `vcm token create`; `vcm server --dev` keeps one in <data-dir>/dev-token), or \
                 present a client certificate the server maps (VCM_CLIENT_CERT and \
                 VCM_CLIENT_KEY)"
            ),
        };
        if token.is_some() {
            ensure_token_stays_private(&self.addr, self.allow_insecure_http)?;
        }
        Ok(Client::with_tls(self.addr.clone(), token, &tls)?)
    }
}

/// Refuses to send a bearer token in clear text to a host that is not this machine.
fn ensure_token_stays_private(addr: &Url, allowed: bool) -> anyhow::Result<()> {
    if addr.scheme() != "http" || allowed {
        return Ok(());
    }
    let host = addr.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        loopback,
        "refusing to send the API token over plain HTTP to {addr}: anyone on the way could \
         read it. Use https:// (the server's tls.cert_file), or pass --allow-insecure-http \
         (VCM_ALLOW_INSECURE_HTTP=true) if the network is private"
    );
    Ok(())
}

impl fmt::Debug for GlobalOpts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalOpts")
            .field("output", &self.output)
            .field("addr", &self.addr.as_str())
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("token_file", &self.token_file)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("cacert", &self.cacert)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .finish()
    }
}

// === impl ServerArgs ===

impl ServerArgs {
    /// The flags that override configuration.
    pub fn overrides(&self) -> ConfigOverrides {
        ConfigOverrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            dev: self.dev,
        }
    }
}

impl fmt::Debug for ServerArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerArgs")
            .field("config", &self.config)
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("dev", &self.dev)
            .field("dev_token", &self.dev_token.as_ref().map(|_| "[redacted]"))
            .field("dev_token_file", &self.dev_token_file)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn server_flags_become_config_overrides() {
        // Act
        let cli = Cli::try_parse_from([
            "vcm",
            "server",
            "--listen",
            "127.0.0.1:9000",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ])
        .unwrap();

        // Assert
        let Command::Server(args) = cli.command else {
            panic!("expected the server command, got {:?}", cli.command);
        };
        let overrides = args.overrides();
        assert_eq!(overrides.listen, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(overrides.log_format, Some(LogFormat::Json));
        assert_eq!(overrides.log_level.as_deref(), Some("debug"));
        assert_eq!(overrides.data_dir, None);
    }

    #[test]
    fn dev_token_requires_dev_mode() {
        // Act
        let result = Cli::try_parse_from(["vcm", "server", "--dev-token", "t"]);

        // Assert
        assert!(result.is_err());
    }

    #[test]
    fn a_client_certificate_stands_in_for_the_token_and_neither_is_an_error_naming_both() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let missing = missing.to_str().unwrap();
        let with_cert = Cli::try_parse_from([
            "vcm",
            "--token",
            "",
            "--client-cert",
            missing,
            "--client-key",
            missing,
            "version",
        ])
        .unwrap();
        let with_nothing = Cli::try_parse_from(["vcm", "--token", "", "version"]).unwrap();

        // Act
        let cert_err = with_cert.global.client().unwrap_err().to_string();
        let none_err = with_nothing.global.client().unwrap_err().to_string();

        // Assert
        assert!(
            cert_err.contains("VCM_CLIENT_CERT") && cert_err.contains("cannot read"),
            "with a certificate the token is not asked for; the file is: {cert_err}"
        );
        assert!(
            none_err.contains("VCM_TOKEN") && none_err.contains("VCM_CLIENT_CERT"),
            "{none_err}"
        );
    }

    #[test]
    fn debug_output_redacts_tokens() {
        // Arrange
        let cli = Cli::try_parse_from([
            "vcm",
            "--token",
            "vcm_client_secret",
            "server",
            "--dev",
            "--dev-token",
            "vcm_dev_secret",
        ])
        .unwrap();

        // Act
        let debug = format!("{cli:?}");

        // Assert
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}
