//! Running external commands, behind a trait so tests can record them and script answers.

use std::{
    env, fmt,
    io::{self, Write},
    path::Path,
    process::{self, Stdio},
};

/// One command line, with optional stdin (the input of `iptables-restore`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The binary, looked up in `PATH`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Written to its stdin, which is then closed.
    pub stdin: Option<String>,
}

impl Command {
    /// A command without stdin.
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            stdin: None,
        }
    }

    /// The same command, fed `input` on stdin.
    pub fn with_stdin(mut self, input: String) -> Self {
        self.stdin = Some(input);
        self
    }

    /// The command line without its stdin, shell-quoted where needed.
    pub fn line(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|word| shell_quote(word))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for Command {
    /// As a shell command, stdin given as a here-document, so a dry run can be pasted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())?;
        if let Some(input) = &self.stdin {
            write!(f, " <<'EOF'\n{input}EOF")?;
        }
        Ok(())
    }
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:,=+@".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a finished command printed and how it exited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` if it was killed by a signal.
    pub code: Option<i32>,
    /// Its stdout, lossily decoded.
    pub stdout: String,
    /// Its stderr, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Whether it exited with 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The exit status, for messages.
    pub fn status(&self) -> String {
        match self.code {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        }
    }
}

/// Runs commands. [`SystemRunner`] runs them for real; tests use a recording fake.
pub trait Runner {
    /// Whether `program` is an executable file in `PATH`.
    fn exists(&self, program: &str) -> bool;

    /// Runs `command` to completion. An `Err` means it could not be started at all.
    fn run(&mut self, command: &Command) -> io::Result<Output>;
}

/// Runs commands as child processes of this one, in this network namespace.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn exists(&self, program: &str) -> bool {
        let Some(path) = env::var_os("PATH") else {
            return false;
        };
        env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
    }

    fn run(&mut self, command: &Command) -> io::Result<Output> {
        let mut child = process::Command::new(&command.program)
            .args(&command.args)
            .stdin(if command.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let (Some(input), Some(mut stdin)) = (&command.stdin, child.stdin.take()) {
            // iptables-restore reads all of stdin before it answers, and the input is a few
            // KiB at most, so writing it all before reading the output cannot deadlock.
            // A broken pipe means it exited without reading (e.g. no permission); its exit
            // status and stderr say why, which is more useful than EPIPE.
            match stdin.write_all(input.as_bytes()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
                _ => {}
            }
        }
        let out = child.wait_with_output()?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_pasteable_shell() {
        let cmd = Command::new("iptables-nft-restore", ["-w", "10", "--noflush"])
            .with_stdin("*nat\nCOMMIT\n".into());
        assert_eq!(
            cmd.to_string(),
            "iptables-nft-restore -w 10 --noflush <<'EOF'\n*nat\nCOMMIT\nEOF"
        );
        let cmd = Command::new("echo", ["it's", "", "a b", "127.0.0.0/8", "22,80:90"]);
        assert_eq!(cmd.line(), r"echo 'it'\''s' '' 'a b' 127.0.0.0/8 22,80:90");
    }

    #[test]
    fn system_runner_runs_and_feeds_stdin() -> io::Result<()> {
        let mut runner = SystemRunner;
        assert!(runner.exists("sh"));
        assert!(!runner.exists("weft-init-no-such-binary"));
        let out = runner.run(
            &Command::new("sh", ["-c", "cat; echo oops >&2; exit 3"]).with_stdin("hi\n".into()),
        )?;
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "hi\n");
        assert_eq!(out.stderr, "oops\n");
        let err = runner
            .run(&Command::new("weft-init-no-such-binary", ["x"]))
            .expect_err("missing binary");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        Ok(())
    }
}
