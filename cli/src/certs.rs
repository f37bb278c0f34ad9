//! `weft certs`: make the mesh's trust anchor (root) and the controller's issuer, and inspect
//! certificates, CSRs and keys.

use anyhow::{Context, bail};
use std::{
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};
use weft_certs::{Ca, CaFiles, DEFAULT_TRUST_DOMAIN, generate_issuer, generate_root};
use weft_cli::duration::parse_duration;

/// `weft certs` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Makes a self-signed root CA: the trust anchor every proxy and the controller trust.
    Root(RootArgs),
    /// Makes the controller's issuer: an intermediate CA signed by the root.
    Issuer(IssuerArgs),
    /// Prints every certificate, CSR or key in a PEM file: names, validity, CA or leaf,
    /// key algorithm, SANs, mesh identity, fingerprints.
    Inspect(InspectArgs),
}

/// Where to write a certificate and its key.
#[derive(Debug, clap::Args)]
struct Output {
    /// Where to write the certificate (PEM).
    #[arg(long)]
    cert_out: PathBuf,
    /// Where to write the private key (PKCS#8 PEM, mode 0600).
    #[arg(long)]
    key_out: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct RootArgs {
    /// The mesh's trust domain; the root is named `root.<trust-domain>`.
    #[arg(long, env = "WEFT_TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN)]
    trust_domain: String,
    /// How long the root is valid: `87600h`, `3650d`, `90m`, `3600s`.
    #[arg(long, default_value = "87600h", value_parser = parse_duration)]
    lifetime: Duration,
    #[command(flatten)]
    out: Output,
}

#[derive(Debug, clap::Args)]
struct IssuerArgs {
    /// The root certificate (PEM) that signs the issuer.
    #[arg(long)]
    ca_cert: PathBuf,
    /// The root's private key (PKCS#8 PEM).
    #[arg(long)]
    ca_key: PathBuf,
    /// The mesh's trust domain; the issuer is named `issuer.<trust-domain>`.
    #[arg(long, env = "WEFT_TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN)]
    trust_domain: String,
    /// How long the issuer is valid (never past the root): `8760h`, `365d`, `90m`, `3600s`.
    #[arg(long, default_value = "8760h", value_parser = parse_duration)]
    lifetime: Duration,
    #[command(flatten)]
    out: Output,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// A PEM file: certificates, a CSR or a private key.
    file: PathBuf,
}

/// Runs `weft certs ...`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Root(args) => {
            args.out.check_free()?;
            let files = generate_root(&args.trust_domain, args.lifetime)?;
            args.out.write(&files, "root (trust anchor)")
        }
        Command::Issuer(args) => {
            args.out.check_free()?;
            let cert = read(&args.ca_cert)?;
            let key = read(&args.ca_key)?;
            let root = Ca::from_pem(&cert, &key).with_context(|| {
                format!(
                    "cannot sign with CA {} and key {}",
                    args.ca_cert.display(),
                    args.ca_key.display()
                )
            })?;
            let files = generate_issuer(&root, &args.trust_domain, args.lifetime)?;
            args.out.write(&files, "issuer")
        }
        Command::Inspect(args) => {
            let text = read(&args.file)?;
            let report = weft_certs::inspect(&text)
                .with_context(|| format!("cannot inspect {}", args.file.display()))?;
            print!("{report}");
            Ok(())
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

impl Output {
    /// Fails before anything is made if an output exists (without `--force`) or both are one.
    fn check_free(&self) -> anyhow::Result<()> {
        if self.cert_out == self.key_out {
            bail!(
                "--cert-out and --key-out are both {}; the certificate and key need two files",
                self.cert_out.display()
            );
        }
        if self.force {
            return Ok(());
        }
        for path in [&self.cert_out, &self.key_out] {
            if path.exists() {
                bail!(
                    "{} exists; not overwriting it (pass --force to replace it)",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// Writes the key (0600) and then the certificate (0644), and says what was made.
    fn write(&self, files: &CaFiles, what: &str) -> anyhow::Result<()> {
        write_file(&self.key_out, &files.key_pem, 0o600, self.force)?;
        write_file(&self.cert_out, &files.cert_pem, 0o644, self.force)?;
        println!(
            "wrote {what} certificate {} and its private key {} (mode 0600; keep it secret)\n",
            self.cert_out.display(),
            self.key_out.display()
        );
        // The files were just made by weft-certs, so the report cannot fail; if it did, the
        // files are written all the same.
        if let Ok(report) = weft_certs::inspect(&files.cert_pem) {
            print!("{report}");
        }
        Ok(())
    }
}

/// Writes `text` to `path` with `mode`; replaces an existing file only with `force`.
fn write_file(path: &Path, text: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).with_context(|| {
        if path.exists() && !force {
            format!("{} exists; pass --force to replace it", path.display())
        } else {
            format!("cannot create {}", path.display())
        }
    })?;
    // An existing file keeps its old mode on open; a key must not stay readable by others.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
