//! Why weft-init failed, with the command and what it printed.

use std::io;

use crate::{Command, Output};

/// A failure to program (or inspect) the rules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A binary the chosen mode needs is not installed.
    #[error("`{program}` not found in PATH; install the iptables package or pass --iptables-mode")]
    NotFound {
        /// The missing binary.
        program: String,
    },

    /// The kernel refused: not root, or no CAP_NET_ADMIN in this network namespace.
    #[error(
        "`{command}` was refused: weft-init needs root or CAP_NET_ADMIN (and NET_RAW) in the \
         pod's network namespace: {stderr}"
    )]
    PermissionDenied {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },

    /// A command exited unsuccessfully.
    #[error("`{command}` failed with {status}: {stderr}{detail}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// How it exited.
        status: String,
        /// What it printed on stderr.
        stderr: String,
        /// A hint and/or the restore input that was rejected (empty if none).
        detail: String,
    },

    /// A command could not be started.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Deleting a jump kept succeeding without the jump going away.
    #[error("`{command}` still finds the jump after {attempts} deletions")]
    JumpNotRemoved {
        /// The check command.
        command: String,
        /// How many deletions were tried.
        attempts: usize,
    },

    /// Writing the report (dry-run script, rules) failed.
    #[error("could not write output: {0}")]
    Write(#[source] io::Error),
}

impl Error {
    /// Maps a command that could not be started.
    pub fn spawn(command: &Command, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            return Error::NotFound {
                program: command.program.clone(),
            };
        }
        Error::Spawn {
            command: command.line(),
            source,
        }
    }

    /// Maps a command that exited unsuccessfully, recognising the ways iptables says it lacks
    /// privileges (they differ between nft, legacy and restore, and so do the exit codes).
    pub fn failed(command: &Command, out: &Output) -> Self {
        let stderr = out.stderr.trim().to_string();
        if is_permission_denied(&stderr) {
            return Error::PermissionDenied {
                command: command.line(),
                stderr,
            };
        }
        let mut detail = String::new();
        if stderr.contains("initialize table") || stderr.contains("initialize iptables table") {
            // Legacy iptables without CAP_NET_ADMIN or CAP_NET_RAW says only this (observed
            // with 1.8.9; nft needs only CAP_NET_ADMIN).
            detail.push_str(
                "\n(the nat table could not be initialized: weft-init may lack CAP_NET_ADMIN or \
                 CAP_NET_RAW (legacy iptables needs both), or the kernel lacks the legacy nat \
                 table; try --iptables-mode nft)",
            );
        }
        if let Some(input) = &command.stdin {
            // restore errors cite line numbers ("line 3 failed"), so number the input.
            detail.push_str("\ninput was:");
            for (n, line) in input.lines().enumerate() {
                detail.push_str(&format!("\n{:>4} {line}", n + 1));
            }
        }
        Error::CommandFailed {
            command: command.line(),
            status: out.status(),
            stderr,
            detail,
        }
    }
}

/// How nft, legacy and their restore tools say they lack privileges (iptables 1.8.9).
pub(crate) fn is_permission_denied(stderr: &str) -> bool {
    stderr.contains("Permission denied") || stderr.contains("you must be root")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, stderr: &str) -> Output {
        Output {
            code: Some(code),
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn missing_binary() {
        let cmd = Command::new("iptables-nft", ["-t", "nat"]);
        let err = Error::spawn(&cmd, io::ErrorKind::NotFound.into());
        assert_eq!(
            err.to_string(),
            "`iptables-nft` not found in PATH; install the iptables package or pass --iptables-mode"
        );
        let err = Error::spawn(&cmd, io::ErrorKind::PermissionDenied.into());
        assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
    }

    #[test]
    fn permission_denied_as_printed_by_each_tool() {
        // Verbatim from iptables 1.8.9 run as nobody / without CAP_NET_ADMIN.
        let cmd = Command::new("iptables-nft", ["-t", "nat", "-C", "OUTPUT"]);
        for stderr in [
            "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: \
             Permission denied (you must be root)",
            "Fatal: can't open lock file /run/xtables.lock: Permission denied",
            "iptables v1.8.9 (legacy): can't initialize iptables table `nat': \
             Permission denied (you must be root)",
        ] {
            let err = Error::failed(&cmd, &out(4, stderr));
            assert!(matches!(err, Error::PermissionDenied { .. }), "{stderr}");
            let msg = err.to_string();
            assert!(msg.contains("needs root or CAP_NET_ADMIN"), "{msg}");
            assert!(msg.contains("iptables-nft -t nat -C OUTPUT"), "{msg}");
        }
    }

    #[test]
    fn failed_restore_shows_numbered_input_and_hint() {
        let cmd = Command::new("iptables-legacy-restore", ["--noflush"])
            .with_stdin("*nat\n-A X -j Y\nCOMMIT\n".into());
        let err = Error::failed(
            &cmd,
            &out(
                2,
                "iptables-restore v1.8.9 (legacy): iptables-restore: unable to initialize table 'nat'\n",
            ),
        );
        assert_eq!(
            err.to_string(),
            "`iptables-legacy-restore --noflush` failed with exit status 2: \
             iptables-restore v1.8.9 (legacy): iptables-restore: unable to initialize table 'nat'\n\
             (the nat table could not be initialized: weft-init may lack CAP_NET_ADMIN or \
             CAP_NET_RAW (legacy iptables needs both), or the kernel lacks the legacy nat \
             table; try --iptables-mode nft)\n\
             input was:\n   1 *nat\n   2 -A X -j Y\n   3 COMMIT"
        );
    }

    #[test]
    fn other_failures_name_command_and_stderr() {
        let cmd = Command::new("ip6tables-nft", ["-t", "nat", "-A", "OUTPUT"]);
        let err = Error::failed(
            &cmd,
            &out(2, "ip6tables v1.8.9: too many ports specified\n"),
        );
        assert_eq!(
            err.to_string(),
            "`ip6tables-nft -t nat -A OUTPUT` failed with exit status 2: \
             ip6tables v1.8.9: too many ports specified"
        );
    }
}
