//! A fake iptables for unit tests: records every command and keeps just enough state (the
//! jump rules of each binary) for `-C`, `-A` and `-D` to answer like the real thing.

use std::{collections::HashMap, io};

use crate::{Command, Output, Runner};

#[derive(Debug, Default)]
pub(crate) struct FakeIptables {
    /// Programs that are not "installed".
    pub missing: Vec<&'static str>,
    /// Rules added with `-A`, per binary, as args without `-w 10` and the operation.
    pub rules: HashMap<String, Vec<Vec<String>>>,
    /// Canned answers: the first whose key is a substring of the command line wins.
    pub answers: Vec<(&'static str, Output)>,
    /// Every command run, in order.
    pub log: Vec<Command>,
}

impl FakeIptables {
    pub fn answer(
        mut self,
        line_contains: &'static str,
        code: i32,
        stdout: &str,
        stderr: &str,
    ) -> Self {
        self.answers.push((
            line_contains,
            Output {
                code: Some(code),
                stdout: stdout.into(),
                stderr: stderr.into(),
            },
        ));
        self
    }

    /// Adds `jump`'s rule to `program`, as if an earlier run (or another tool) had.
    pub fn seed(&mut self, program: &str, args: Vec<String>) {
        self.rules
            .entry(program.to_string())
            .or_default()
            .push(strip_op(&args).1);
    }

    /// The command lines run, without stdin.
    pub fn lines(&self) -> Vec<String> {
        self.log.iter().map(Command::line).collect()
    }
}

fn strip_op(args: &[String]) -> (Option<String>, Vec<String>) {
    let mut op = None;
    let mut rest = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-w" => {
                iter.next();
            }
            "-C" | "-A" | "-D" if op.is_none() => op = Some(arg.clone()),
            _ => rest.push(arg.clone()),
        }
    }
    (op, rest)
}

fn exit(code: i32, stderr: &str) -> Output {
    Output {
        code: Some(code),
        stdout: String::new(),
        stderr: stderr.into(),
    }
}

impl Runner for FakeIptables {
    fn exists(&self, program: &str) -> bool {
        !self.missing.contains(&program)
    }

    fn run(&mut self, command: &Command) -> io::Result<Output> {
        self.log.push(command.clone());
        if self.missing.contains(&command.program.as_str()) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let line = command.line();
        if let Some((_, out)) = self.answers.iter().find(|(key, _)| line.contains(key)) {
            return Ok(out.clone());
        }
        let (op, rule) = strip_op(&command.args);
        let rules = self.rules.entry(command.program.clone()).or_default();
        let pos = rules.iter().position(|r| *r == rule);
        Ok(match (op.as_deref(), pos) {
            (Some("-C"), Some(_)) => exit(0, ""),
            (Some("-C"), None) | (Some("-D"), None) => exit(
                1,
                "iptables: Bad rule (does a matching rule exist in that chain?).\n",
            ),
            (Some("-A"), _) => {
                rules.push(rule);
                exit(0, "")
            }
            (Some("-D"), Some(i)) => {
                rules.remove(i);
                exit(0, "")
            }
            // restore, save: accepted.
            _ => exit(0, ""),
        })
    }
}
