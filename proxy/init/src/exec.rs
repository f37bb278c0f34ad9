//! Getting a [`Plan`] into the kernel, or removing it, idempotently; or printing how.
//!
//! Both come from one list of [`Step`]s, so a dry run prints exactly what a real run does.
//! Chain contents go in with `iptables-restore --noflush`, one transaction per family, which
//! replaces them atomically; the jumps from the built-in chains are single rules, added only
//! when `iptables -C` says they are missing, so other tools' rules there are left alone.

use crate::{
    Action, Backend, Command, Error, Family, Jump, Output, Plan, Runner,
    error::is_permission_denied,
    plan::{delete_chains_input, flush_chains_input},
};

/// Wait up to this many seconds for the xtables lock rather than fail when another iptables
/// (legacy) runs at the same time; nft ignores it.
const LOCK_WAIT: [&str; 2] = ["-w", "10"];
/// More copies of one jump than this means something else keeps adding it.
const MAX_JUMP_DELETIONS: usize = 16;

/// One thing to do to one family's nat table.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// Run an `iptables-restore --noflush` transaction.
    Restore(Command),
    /// Run `add` unless `check` finds the jump.
    EnsureJump {
        family: Family,
        jump: Jump,
        check: Command,
        add: Command,
    },
    /// Run `delete` as long as `check` finds the jump.
    RemoveJump { check: Command, delete: Command },
}

impl Step {
    /// As shell, so a dry run can be read and pasted.
    fn script(&self) -> String {
        match self {
            Step::Restore(cmd) => cmd.to_string(),
            Step::EnsureJump { check, add, .. } => format!("{} || {}", check.line(), add.line()),
            Step::RemoveJump { check, delete } => {
                format!("while {}; do {}; done", check.line(), delete.line())
            }
        }
    }
}

fn steps(backend: Backend, plan: &Plan, action: Action) -> Vec<Step> {
    let mut steps = Vec::new();
    for fam in &plan.families {
        let tools = backend.tools(fam.family);
        let restore = |input: String| {
            Step::Restore(
                Command::new(tools.restore, LOCK_WAIT.into_iter().chain(["--noflush"]))
                    .with_stdin(input),
            )
        };
        let jump = |jump: &Jump, op: &str| {
            Command::new(
                tools.iptables,
                LOCK_WAIT.into_iter().map(String::from).chain(jump.args(op)),
            )
        };
        match action {
            Action::Apply => {
                steps.push(restore(fam.restore_input()));
                steps.extend(fam.jumps.iter().map(|j| Step::EnsureJump {
                    family: fam.family,
                    jump: *j,
                    check: jump(j, "-C"),
                    add: jump(j, "-A"),
                }));
            }
            Action::Cleanup => {
                // Chains first made present (and emptied), so that `-C` failing below can
                // only mean "no such jump", never "no such chain".
                steps.push(restore(flush_chains_input()));
                steps.extend(fam.jumps.iter().map(|j| Step::RemoveJump {
                    check: jump(j, "-C"),
                    delete: jump(j, "-D"),
                }));
                steps.push(restore(delete_chains_input()));
            }
        }
    }
    steps
}

/// The shell script a run of `action` would execute, for `--dry-run`.
pub fn script(backend: Backend, plan: &Plan, action: Action) -> String {
    steps(backend, plan, action)
        .iter()
        .map(|step| step.script() + "\n")
        .collect()
}

/// What [`Executor::apply`] found and did about one jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JumpState {
    /// In which family.
    pub family: Family,
    /// Which jump.
    pub jump: Jump,
    /// Whether it was missing and added (else it was already there).
    pub added: bool,
}

/// Runs plans with one backend's binaries through a [`Runner`].
pub struct Executor<'r> {
    runner: &'r mut dyn Runner,
    backend: Backend,
}

impl<'r> Executor<'r> {
    /// An executor that runs `backend`'s binaries through `runner`.
    pub fn new(runner: &'r mut dyn Runner, backend: Backend) -> Self {
        Self { runner, backend }
    }

    /// Installs `plan`: replaces the contents of Weft's chains and adds missing jumps.
    /// Running it again with the same plan changes nothing.
    pub fn apply(&mut self, plan: &Plan) -> Result<Vec<JumpState>, Error> {
        self.require(plan)?;
        self.execute(steps(self.backend, plan, Action::Apply))
    }

    /// Removes the jumps and Weft's chains for the families in `plan`. Nothing to remove is
    /// not an error.
    pub fn cleanup(&mut self, plan: &Plan) -> Result<(), Error> {
        self.require(plan)?;
        self.execute(steps(self.backend, plan, Action::Cleanup))
            .map(drop)
    }

    fn execute(&mut self, steps: Vec<Step>) -> Result<Vec<JumpState>, Error> {
        let mut jumps = Vec::new();
        for step in steps {
            match step {
                Step::Restore(cmd) => {
                    self.run(&cmd)?;
                }
                Step::EnsureJump {
                    family,
                    jump,
                    check,
                    add,
                } => {
                    let added = !self.check(&check)?;
                    if added {
                        self.run(&add)?;
                    }
                    jumps.push(JumpState {
                        family,
                        jump,
                        added,
                    });
                }
                Step::RemoveJump { check, delete } => self.remove_jump(&check, &delete)?,
            }
        }
        Ok(jumps)
    }

    /// The current nat table of `family`, as `iptables-save -t nat` prints it.
    pub fn save(&mut self, family: Family) -> Result<String, Error> {
        let cmd = Command::new(self.backend.tools(family).save, ["-t", "nat"]);
        Ok(self.run(&cmd)?.stdout)
    }

    fn remove_jump(&mut self, check: &Command, delete: &Command) -> Result<(), Error> {
        // Loop because `-D` removes one copy, and older tools may have added several.
        for _ in 0..MAX_JUMP_DELETIONS {
            if !self.check(check)? {
                return Ok(());
            }
            self.run(delete)?;
        }
        Err(Error::JumpNotRemoved {
            command: check.line(),
            attempts: MAX_JUMP_DELETIONS,
        })
    }

    /// Fails before changing anything if any binary is missing, so a missing ip6tables does
    /// not leave IPv4 programmed and IPv6 not.
    fn require(&self, plan: &Plan) -> Result<(), Error> {
        for fam in &plan.families {
            let tools = self.backend.tools(fam.family);
            for program in [tools.iptables, tools.restore] {
                if !self.runner.exists(program) {
                    return Err(Error::NotFound {
                        program: program.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, cmd: &Command) -> Result<Output, Error> {
        let out = self.runner.run(cmd).map_err(|e| Error::spawn(cmd, e))?;
        if out.success() {
            Ok(out)
        } else {
            Err(Error::failed(cmd, &out))
        }
    }

    /// `iptables -C`: exit 0 means present, 1 means absent (the chains exist by then, so this
    /// is not "no such chain"); anything else, or a permission problem, is an error.
    fn check(&mut self, cmd: &Command) -> Result<bool, Error> {
        let out = self.runner.run(cmd).map_err(|e| Error::spawn(cmd, e))?;
        match out.code {
            Some(0) => Ok(true),
            Some(1) if !is_permission_denied(&out.stderr) => Ok(false),
            _ => Err(Error::failed(cmd, &out)),
        }
    }
}

#[cfg(test)]
mod tests;
