//! `sluice serve` and `sluice admin create-key|list-keys|revoke-key`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use secrecy::ExposeSecret;
use sluice::api::{ApiState, Guards, Role};
use sluice::boundary::audit::NewEntry;
use sluice::marketplace::Location;
use sluice::server::scheduler::ScheduleRetry;
use sluice::server::webhooks::WebhookConfig;
use sluice::server::{Server, ServerConfig};
use sluice::store::KeyChange;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where to listen. Plain HTTP is served on loopback only; any other address needs
    /// `--tls-cert` and `--tls-key`.
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    listen: SocketAddr,
    /// Serve HTTPS with this PEM certificate chain (TLS 1.3 and 1.2 only; answers carry HSTS).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also listen for plain HTTP here, answering every request with a redirect to HTTPS.
    #[arg(long, value_name = "ADDR", requires = "tls_cert")]
    redirect_http: Option<SocketAddr>,
    /// The index installs use when a request names none (a directory or an https URL).
    #[arg(long, env = "SLUICE_INDEX", value_name = "DIR|URL")]
    index: Option<String>,
    /// Requests per second each API key may make (bursts up to the same number); beyond it,
    /// 429 with Retry-After.
    #[arg(long, default_value_t = sluice::api::DEFAULT_RATE, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: u32,
    /// At most this many runs at once, scheduled or triggered; scheduled runs wait for a
    /// slot, triggers are answered 503 with Retry-After.
    #[arg(long, default_value_t = sluice::server::runs::DEFAULT_MAX_RUNS as u16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    max_runs: u16,
    /// How often a failed scheduled run is retried (resuming it) before the scheduler gives up
    /// until the next occurrence.
    #[arg(long, default_value_t = 3, value_name = "N")]
    retries: usize,
    /// The first retry's delay in seconds; each next one doubles, with jitter.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS", value_parser = positive_seconds)]
    retry_delay: f64,
    /// Where webhook URLs may point: `scheme://host[:port]` rules (`*.example.com`, port `*`),
    /// repeat for more; they replace the default `https://*:*` (any public HTTPS host). A host
    /// named exactly may resolve to loopback or private addresses; any other may not.
    #[arg(long = "webhook-allow", value_name = "RULE")]
    webhook_allow: Vec<sluice::capability::net::AllowRule>,
    /// How often a webhook delivery is retried before it is given up.
    #[arg(long, default_value_t = 8, value_name = "N")]
    webhook_retries: usize,
    /// The first webhook retry's delay in seconds; each next one doubles, with jitter (at
    /// most an hour).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS", value_parser = positive_seconds)]
    webhook_retry_delay: f64,
    /// Audit entries younger than this are never purged, and `PUT /v1/retention` cannot set a
    /// shorter audit retention (`365d`, `90d`, `12h`…). Lowering it is audited when the server
    /// starts; it is the only way to keep audit entries less than 30 days.
    #[arg(long, default_value = "365d", value_name = "DURATION", value_parser = audit_floor)]
    audit_floor: std::time::Duration,
}

fn audit_floor(s: &str) -> Result<std::time::Duration, String> {
    match sluice::boundary::retention::Keep::parse_duration(s) {
        Some(d) => Ok(d),
        None => Err(format!(
            "`{s}`: give a duration like `365d`, `90d` or `12h`"
        )),
    }
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 86400"
        )),
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create an API key; its token is printed once and never stored.
    CreateKey {
        /// Its organization role.
        #[arg(long, value_enum)]
        role: Role,
        /// What it is for.
        #[arg(long, default_value = "")]
        name: String,
        /// Expire it after this many days (default: never; at least 1).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
        expires_in_days: Option<u32>,
        /// Only accept it from these addresses (a CIDR or an address; repeat for more).
        #[arg(long = "allow-ip", value_name = "CIDR")]
        allow_ip: Vec<String>,
        /// Require its requests to be signed; the signing secret is printed once, on the
        /// line after the token.
        #[arg(long)]
        signed: bool,
    },
    /// List API keys (never their secrets).
    ListKeys,
    /// Revoke an API key by id.
    RevokeKey {
        /// The key's id (the 16 hex digits after `sluice_`).
        id: String,
    },
}

pub async fn serve(ctx: &super::Ctx, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let data_dir = ctx.data_dir.as_path();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(sluice::api::tls::server_config(cert, key)?),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "refusing to serve plain HTTP on {}: only loopback addresses are served without TLS; \
             give --tls-cert and --tls-key, or bind 127.0.0.1",
            args.listen
        );
    }
    let store = Arc::new(ctx.store().await?);
    let runtime = super::runtime(data_dir)?;
    let default_index = args.index.as_deref().map(Location::parse).transpose()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut webhooks = WebhookConfig {
        retries: args.webhook_retries,
        retry_delay: std::time::Duration::from_secs_f64(args.webhook_retry_delay),
        ..Default::default()
    };
    if !args.webhook_allow.is_empty() {
        webhooks.allow = args.webhook_allow.clone();
    }
    let config = ServerConfig {
        default_index,
        max_runs: usize::from(args.max_runs),
        webhooks,
        retry: ScheduleRetry {
            retries: args.retries,
            delay: std::time::Duration::from_secs_f64(args.retry_delay),
        },
        audit_floor: args.audit_floor,
    };
    if args.audit_floor < sluice::boundary::retention::AUDIT_MIN {
        eprintln!(
            "warning: --audit-floor {}: audit entries may be purged after less than 30 days",
            sluice::boundary::retention::Keep::For(args.audit_floor)
        );
    }
    let handle = Server::start(store, runtime, config, &super::actor()).await?;
    let state = ApiState::new(handle.server().clone(), Guards::new(args.rate_limit));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let redirect = match args.redirect_http {
        Some(at) => {
            let l = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (--redirect-http)"))?;
            println!("redirecting http://{} to https", l.local_addr()?);
            Some(tokio::spawn(sluice::api::serve_redirect(
                l,
                addr.port(),
                stopped(),
            )))
        }
        None => None,
    };
    let http = match tls {
        Some(config) => {
            println!("listening on https://{addr}");
            let listener = sluice::api::tls::TlsListener::new(listener, config)?;
            tokio::spawn(sluice::api::serve_tls(listener, state, stopped()))
        }
        None => {
            println!("listening on http://{addr}");
            tokio::spawn(sluice::api::serve(listener, state, stopped()))
        }
    };
    use std::io::Write;
    std::io::stdout().flush()?;
    shutdown_signal().await;
    eprintln!(
        "shutting down: finishing the requests in flight; {} run(s) commit what they wrote and stop",
        handle.server().running.len()
    );
    let _ = stop_tx.send(true);
    if !handle.shutdown(RUNS_STOP_LIMIT).await {
        eprintln!(
            "runs still going after {}s; leaving them to be resumed by their next run",
            RUNS_STOP_LIMIT.as_secs()
        );
    }
    http.await??;
    if let Some(r) = redirect {
        r.await??;
    }
    Ok(ExitCode::SUCCESS)
}

/// How long a shutdown waits for running syncs to commit and stop.
const RUNS_STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Ctrl-C, or SIGTERM (what service managers send).
pub(super) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn admin(ctx: &super::Ctx, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        AdminCommand::CreateKey {
            role,
            name,
            expires_in_days,
            allow_ip,
            signed,
        } => {
            let allowed = if allow_ip.is_empty() {
                None
            } else {
                sluice::api::allowlist::parse(&serde_json::json!(allow_ip))
                    .map_err(|e| anyhow::anyhow!("--allow-ip: {}", e.message))?
            };
            let expires = expires_in_days
                .map(|d| time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(d)));
            let (key, token) = store.create_api_key(&name, role.as_str(), expires).await?;
            if allowed.is_some() {
                store.set_api_key_ips(&key.id, allowed.as_deref()).await?;
            }
            let signing = if signed {
                store.set_api_key_signing(&key.id, true).await?.flatten()
            } else {
                None
            };
            store
                .audit(&[NewEntry::new(
                    super::actor(),
                    "api_key.created",
                    format!("api_key/{}", key.id),
                    "ok",
                    serde_json::json!({
                        "role": key.role, "name": key.name, "expires_at": key.expires_at,
                        "allowed_ips": allowed, "signed": signed,
                    }),
                )])
                .await?;
            store.audit_seal().await?;
            eprintln!(
                "created API key {} ({}); the token below is shown once:",
                key.id, key.role
            );
            println!("{}", token.expose_secret());
            if let Some(secret) = signing {
                eprintln!("its requests must be signed with this secret (shown once):");
                println!("{}", secret.expose_secret());
            }
        }
        AdminCommand::ListKeys => {
            for k in store.api_keys().await? {
                let state = if k.revoked_at.is_some() {
                    "revoked".to_string()
                } else if let Some(e) = &k.expires_at {
                    format!("expires {e}")
                } else {
                    "no expiry".to_string()
                };
                let mut policy = String::new();
                if let Some(ips) = &k.allowed_ips {
                    policy.push_str(&format!("  from {}", ips.join(",")));
                }
                if k.signed {
                    policy.push_str("  signed");
                }
                println!("{}  {:<8} {:<24} {state}{policy}", k.id, k.role, k.name);
            }
        }
        AdminCommand::RevokeKey { id } => {
            match store.revoke_api_key(&id).await? {
                KeyChange::Done => {}
                KeyChange::NotFound => {
                    bail!("no active API key `{id}` (see `sluice admin list-keys`)")
                }
                KeyChange::LastOwner => bail!(
                    "`{id}` is the last active owner key, and there is always an owner: create \
                     another with `sluice admin create-key --role owner` first"
                ),
            }
            store
                .audit(&[NewEntry::new(
                    super::actor(),
                    "api_key.revoked",
                    format!("api_key/{id}"),
                    "ok",
                    serde_json::json!({}),
                )])
                .await?;
            store.audit_seal().await?;
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
