//! The `facade` command: parses the command line, sets up logging, and hands over to `cli`.

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc instead of glibc malloc: request handling allocates many small JSON nodes on two
/// threads, where glibc's arenas showed up as the largest cost in profiles (see README).
#[global_allocator]
static GLOBAL: facade::alloc::Mimalloc = facade::alloc::Mimalloc;
use facade::logbuf::{Lines, LogBuffer};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "facade", version, about = "A declarative Backend-for-Frontend gateway")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, env = "FACADE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway.
    Serve {
        /// The gateway configuration.
        #[arg(long, default_value = "facade.yaml")]
        config: PathBuf,
        /// Address to listen on (overrides `listen`).
        #[arg(long)]
        listen: Option<String>,
        /// Start the built-in fixture backends and point the services at them.
        #[arg(long)]
        demo: bool,
    },
    /// Load and type-check everything; exit 0 (warnings only) or 1.
    Check {
        /// The gateway configuration.
        #[arg(long, default_value = "facade.yaml")]
        config: PathBuf,
    },
    /// Print the route table.
    Routes {
        /// The gateway configuration.
        #[arg(long, default_value = "facade.yaml")]
        config: PathBuf,
    },
    /// Print the GraphQL schema (SDL).
    Schema {
        /// The gateway configuration.
        #[arg(long, default_value = "facade.yaml")]
        config: PathBuf,
    },
    /// Print the OpenAPI 3.1 document of the composed REST endpoints.
    Openapi {
        /// The gateway configuration.
        #[arg(long, default_value = "facade.yaml")]
        config: PathBuf,
    },
    /// Mint an HS* development token.
    Token {
        /// The gateway configuration.
        #[arg(long, default_value = "facade.yaml")]
        config: PathBuf,
        /// The `sub` claim.
        #[arg(long)]
        sub: String,
        /// A role (repeatable); set on the configured roles claim.
        #[arg(long)]
        role: Vec<String>,
        /// Lifetime.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// An extra claim `key=value` (repeatable; JSON values are parsed).
        #[arg(long)]
        claim: Vec<String>,
    },
}

/// Sets up logging to stderr. A terminal gets every line at once; anything else (a file, a pipe,
/// a log collector) gets them through the buffer of `logbuf`, which the caller flushes at exit.
fn init_logging(format: LogFormat) -> Option<Arc<LogBuffer>> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FACADE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never escape codes in a log file.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(terminal);
    if terminal {
        let builder = builder.with_writer(std::io::stderr);
        match format {
            LogFormat::Json => builder.json().flatten_event(true).init(),
            LogFormat::Text => builder.init(),
        }
        return None;
    }
    let buffer = LogBuffer::start();
    let builder = builder.with_writer(Lines(buffer.clone()));
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        // The default's lines, written with less work (one line per request adds up).
        LogFormat::Text => {
            builder
                .fmt_fields(facade::logfmt::TextFields)
                .event_format(facade::logfmt::TextFormat)
                .init();
            facade::logfmt::write_directly(buffer.clone());
        }
    }
    Some(buffer)
}

fn main() {
    let cli = Cli::parse();
    let logs = init_logging(cli.log_format);
    let code = match cli.command {
        Command::Check { config } => facade::cli::check(&config),
        Command::Routes { config } => facade::cli::routes(&config),
        Command::Schema { config } => facade::cli::schema(&config),
        Command::Openapi { config } => facade::cli::openapi(&config),
        Command::Token {
            config,
            sub,
            role,
            ttl,
            claim,
        } => facade::cli::token(&config, &sub, &role, &ttl, &claim),
        Command::Serve { config, listen, demo } => {
            // The thread that accepts is one of the server's workers (see `server`): a
            // single-threaded runtime, with one more on each further worker thread.
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(facade::cli::serve(&config, listen.as_deref(), demo)),
                Err(e) => {
                    eprintln!("facade: cannot start the runtime: {e}");
                    1
                }
            }
        }
    };
    if let Some(logs) = logs {
        logs.flush();
    }
    std::process::exit(code);
}
