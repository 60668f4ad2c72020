//! `souk-example-provider`: runs the example provider of [`souk_example_provider`] on an address.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// An example service-market provider: verifies souk's signature and echoes the request.
#[derive(Debug, Parser)]
#[command(name = "souk-example-provider", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "SOUK_PROVIDER_LISTEN", default_value = "127.0.0.1:9000")]
    listen: String,
    /// The service's signing secret, as `souk admin services create` gave it or was told it.
    #[arg(long, env = "SOUK_PROVIDER_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let Some(secret) = args.secret.filter(|secret| !secret.is_empty()) else {
        eprintln!(
            "souk-example-provider: no secret: pass --secret S or set SOUK_PROVIDER_SECRET to the service's signing secret \
             (the one `souk admin services create` printed)"
        );
        return ExitCode::from(2);
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("souk-example-provider: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = match listener.local_addr() {
        Ok(address) => address,
        Err(err) => {
            eprintln!("souk-example-provider: cannot read the bound address: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts (and souk-bench) read this line to learn the port, so it is flushed at once.
    println!("souk-example-provider listening on http://{address}");
    let _ = std::io::stdout().flush();
    if let Err(err) = souk_example_provider::serve(listener, secret).await {
        eprintln!("souk-example-provider: server failed: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
