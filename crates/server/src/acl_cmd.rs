//! The ACL command and the connection's side of ACLs: AUTH's user switch, the per-command
//! refusal (logged), the EXEC-time re-check, the guard scripts run under, and the clients a
//! user change disconnects. The users and rules themselves: [`crate::acl`].
//!
//! Locks: as [`crate::acl`] (users → a user's rules → log); the client list and each client's
//! metadata are taken only after the ACL locks were released (killing clients, CLIENT INFO for
//! a log entry is built before the log lock).

use forkless_sync::Arc;

use crate::acl::{
    category_commands, file_path, genpass, subscription_allowed, table, Context, Denied, Refusal,
    UserCell, CATEGORIES,
};

impl crate::conn::Conn {
    /// Switch this connection to `user` (AUTH, HELLO AUTH, RESET).
    pub(crate) fn set_user(&mut self, user: Arc<UserCell>) {
        let name = user.name.clone();
        self.user = user;
        self.update_meta(|m| m.user = name);
    }

    /// This client's CLIENT INFO line (an ACL LOG entry's `client-info`).
    pub(crate) fn client_info(&self) -> String {
        crate::command::client_line(&self.shared, &self.entry)
    }

    /// The `-NOPERM` error for `argv` under this connection's user, logged, if refused.
    pub(crate) fn acl_refusal(&self, argv: &[Vec<u8>]) -> Option<String> {
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let r = self.shared.acl.check(&self.user, &refs).err()?;
        let ctx = if self.multi.is_some() {
            Context::Multi
        } else {
            Context::Toplevel
        };
        self.log_refusal(&r, ctx, &refs);
        Some(r.error())
    }

    fn log_refusal(&self, r: &Refusal, ctx: Context, argv: &[&[u8]]) {
        let object: &[u8] = match r.denied {
            Denied::Key | Denied::Channel => argv[r.arg],
            _ => r.fullname.as_bytes(),
        };
        self.shared
            .acl
            .log(r.denied, ctx, object, &self.user.name, self.client_info());
    }

    /// The guard scripts run under: this connection's user (`None`: unrestricted).
    pub(crate) fn script_guard(&self) -> Option<Arc<dyn forkless_script::CallGuard>> {
        if self.user.unrestricted() {
            return None;
        }
        Some(Arc::new(ScriptGuard {
            shared: self.shared.clone(),
            user: self.user.clone(),
            info: self.client_info(),
        }))
    }
}

/// A script's caller as seen by `redis.call` / `redis.acl_check_cmd`.
struct ScriptGuard {
    shared: Arc<crate::state::Shared>,
    user: Arc<UserCell>,
    info: String,
}

impl forkless_script::CallGuard for ScriptGuard {
    fn check(&self, argv: &[&[u8]], log: bool) -> Result<(), String> {
        if self.user.unrestricted() {
            return Ok(());
        }
        let r = match self.shared.acl.check(&self.user, argv) {
            Ok(()) => return Ok(()),
            Err(r) => r,
        };
        if log {
            let object: &[u8] = match r.denied {
                Denied::Key | Denied::Channel => argv[r.arg],
                _ => r.fullname.as_bytes(),
            };
            self.shared.acl.log(
                r.denied,
                Context::Lua,
                object,
                &self.user.name,
                self.info.clone(),
            );
        }
        Err(format!(
            "The user executing the script {}",
            r.denied.script_text()
        ))
    }
}

fn bulk_str(s: impl Into<String>) -> crate::frame::Frame {
    crate::frame::Frame::Bulk(s.into().into_bytes())
}

/// The ACL command.
pub(crate) fn command(conn: &mut crate::conn::Conn, argv: &[Vec<u8>]) -> crate::conn::Step {
    use crate::conn::Step;
    use crate::frame::Frame;
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let acl = &conn.shared.acl;
    let argc = argv.len();
    let f = match sub.as_str() {
        "setuser" if argc >= 3 => match acl.setuser(&argv[2], &argv[3..]) {
            Ok(None) => Frame::ok(),
            Ok(Some(patterns)) => {
                let name = String::from_utf8_lossy(&argv[2]).into_owned();
                if kill_revoked_subscribers(conn, &name, &patterns) {
                    return Step::Close(Frame::ok());
                }
                Frame::ok()
            }
            Err(e) => Frame::err(e),
        },
        "deluser" if argc >= 3 => match acl.deluser(&argv[2..]) {
            Err(e) => Frame::err(e),
            Ok(gone) => {
                let n = gone.len() as i64;
                if kill_clients_of(conn, &gone) {
                    return Step::Close(Frame::Int(n));
                }
                Frame::Int(n)
            }
        },
        "getuser" if argc == 3 => match acl.getuser(&argv[2]) {
            None => Frame::Null,
            Some(g) => {
                let sel = |fields: Vec<(&'static str, String)>| {
                    fields
                        .into_iter()
                        .map(|(k, v)| (bulk_str(k), bulk_str(v)))
                        .collect::<Vec<_>>()
                };
                let mut m = vec![
                    (
                        bulk_str("flags"),
                        Frame::Set(g.flags.iter().map(|f| bulk_str(*f)).collect()),
                    ),
                    (
                        bulk_str("passwords"),
                        Frame::Array(g.passwords.into_iter().map(bulk_str).collect()),
                    ),
                ];
                m.extend(sel(g.root));
                m.push((
                    bulk_str("selectors"),
                    Frame::Array(
                        g.selectors
                            .into_iter()
                            .map(|s| Frame::Map(sel(s)))
                            .collect(),
                    ),
                ));
                Frame::Map(m)
            }
        },
        "list" if argc == 2 => Frame::Array(acl.list().into_iter().map(bulk_str).collect()),
        "users" if argc == 2 => Frame::Array(acl.names().into_iter().map(bulk_str).collect()),
        "whoami" if argc == 2 => bulk_str(conn.user.name.clone()),
        "load" | "save" if argc == 2 && file_path(&conn.shared.engine.config()).is_some() => {
            let path = file_path(&conn.shared.engine.config()).unwrap_or_default();
            if sub == "save" {
                match acl.save_file(&path) {
                    Ok(()) => Frame::ok(),
                    Err(e) => {
                        crate::log::warn(&format!("Writing ACL file for ACL SAVE: {e}"));
                        Frame::err("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
                    }
                }
            } else {
                let name = conn.shared.engine.config().str("aclfile").to_string();
                match acl.load_file(&path, &name) {
                    Ok(gone) => {
                        if kill_clients_of(conn, &gone) {
                            return Step::Close(Frame::ok());
                        }
                        Frame::ok()
                    }
                    Err(e) => Frame::err(format!("ERR {e}")),
                }
            }
        }
        "load" | "save" if argc == 2 => Frame::err("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."),
        "cat" if argc == 2 => Frame::Array(CATEGORIES.iter().map(|c| bulk_str(*c)).collect()),
        "cat" if argc == 3 => match category_commands(&argv[2]) {
            Some(v) => Frame::Array(v.into_iter().map(bulk_str).collect()),
            None => Frame::err(format!(
                "ERR Unknown category '{}'",
                String::from_utf8_lossy(&argv[2][..argv[2].len().min(128)])
            )),
        },
        "genpass" if argc == 2 || argc == 3 => {
            let bits = if argc == 3 {
                match forkless_keyspace::convert::parse_i64(&argv[2]) {
                    Some(b) => b,
                    None => {
                        return Step::Reply(Frame::err(
                            "ERR value is not an integer or out of range",
                        ))
                    }
                }
            } else {
                256
            };
            if bits <= 0 || bits > 4096 {
                Frame::err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
            } else {
                match genpass(bits as usize) {
                    Ok(p) => bulk_str(p),
                    Err(e) => Frame::err(format!("ERR cannot read random bytes: {e}")),
                }
            }
        }
        "log" if argc == 2 || argc == 3 => {
            let mut count = 10i64;
            if argc == 3 {
                if argv[2].eq_ignore_ascii_case(b"reset") {
                    acl.log_reset();
                    return Step::Reply(Frame::ok());
                }
                match forkless_keyspace::convert::parse_i64(&argv[2]) {
                    Some(n) => count = n.max(0),
                    None => {
                        return Step::Reply(Frame::err(
                            "ERR value is not an integer or out of range",
                        ))
                    }
                }
            }
            Frame::Array(
                acl.log_entries(count as usize)
                    .into_iter()
                    .map(|e| {
                        Frame::Map(vec![
                            (bulk_str("count"), Frame::Int(e.count as i64)),
                            (bulk_str("reason"), bulk_str(e.reason)),
                            (bulk_str("context"), bulk_str(e.context)),
                            (bulk_str("object"), Frame::Bulk(e.object)),
                            (bulk_str("username"), bulk_str(e.username)),
                            (bulk_str("age-seconds"), Frame::Double(e.age_seconds)),
                            (bulk_str("client-info"), bulk_str(e.client_info)),
                        ])
                    })
                    .collect(),
            )
        }
        "dryrun" if argc >= 4 => {
            let Some(user) = acl.user(&argv[2]) else {
                return Step::Reply(Frame::err(format!(
                    "ERR User '{}' not found",
                    String::from_utf8_lossy(&argv[2])
                )));
            };
            let refs: Vec<&[u8]> = argv[3..].iter().map(Vec::as_slice).collect();
            let t = table();
            let Some(id) = t.resolve(&refs) else {
                return Step::Reply(Frame::err(format!(
                    "ERR Command '{}' not found",
                    String::from_utf8_lossy(&argv[3])
                )));
            };
            let def = &t.defs[id];
            let n = refs.len() as i64;
            let a = i64::from(def.arity);
            if (a > 0 && a != n) || n < -a {
                return Step::Reply(Frame::err(format!(
                    "ERR wrong number of arguments for '{}' command",
                    def.fullname
                )));
            }
            let r = user.rules.read().check(id, &refs);
            match r {
                Ok(()) => Frame::ok(),
                Err((Denied::Key, i)) => bulk_str(format!(
                    "This user has no permissions to access the '{}' key",
                    String::from_utf8_lossy(refs[i])
                )),
                Err((Denied::Channel, i)) => bulk_str(format!(
                    "This user has no permissions to access the '{}' channel",
                    String::from_utf8_lossy(refs[i])
                )),
                Err(_) => bulk_str(format!(
                    "This user has no permissions to run the '{}' command",
                    def.fullname
                )),
            }
        }
        "help" if argc == 2 => help_reply(&[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ]),
        _ if table()
            .id(&format!("acl|{sub}"))
            .is_some_and(|id| !arity_ok(table().defs[id].arity, argc)) =>
        {
            Frame::err(format!(
                "ERR wrong number of arguments for 'acl|{sub}' command"
            ))
        }
        _ if table().id(&format!("acl|{sub}")).is_some() => Frame::err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&argv[1][..argv[1].len().min(128)])
        )),
        _ => Frame::err(format!(
            "ERR unknown subcommand '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&argv[1][..argv[1].len().min(128)])
        )),
    };
    Step::Reply(f)
}

/// Redis's `addReplyHelp` for ACL.
fn help_reply(lines: &[&str]) -> crate::frame::Frame {
    use crate::frame::Frame;
    let mut v = vec![Frame::Simple(
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into(),
    )];
    v.extend(lines.iter().map(|l| Frame::Simple(l.to_string().into())));
    v.push(Frame::Simple("HELP".into()));
    v.push(Frame::Simple("    Prints this help.".into()));
    Frame::Array(v)
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    let (a, n) = (i64::from(arity), argc as i64);
    if a >= 0 {
        n == a
    } else {
        n >= -a
    }
}

/// Kill the clients authenticated as one of `gone` (Redis's `ACLFreeUserAndKillClients`);
/// true when the calling connection is one of them (it closes after its reply).
fn kill_clients_of(conn: &crate::conn::Conn, gone: &[Arc<UserCell>]) -> bool {
    let mut me = false;
    let clients: Vec<_> = conn.shared.clients.lock().values().cloned().collect();
    for c in clients {
        let u = c.meta.lock().user.clone();
        if gone.iter().any(|g| g.name == u) {
            if c.id == conn.entry.id {
                me = true;
            } else {
                c.kill();
            }
        }
    }
    me
}

/// The EXEC-time error of a queued command the rules no longer allow (Redis's `execCommand`).
fn exec_error(d: Denied) -> String {
    let reason = match d {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key => "no permission to touch the specified keys",
        Denied::Channel => "no permission to access one of the channels used as arguments",
        Denied::Auth => "no permission",
    };
    format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
    )
}

impl crate::conn::Conn {
    /// The queued commands the user may no longer run: (position, error), logged.
    pub(crate) fn exec_acl_refusals(&self, queue: &[Vec<Vec<u8>>]) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        // The client is still in MULTI for its CLIENT INFO (`flags=x`), as in Redis's EXEC.
        let n = queue.len() as i64;
        self.update_meta(|m| m.multi = n);
        for (i, argv) in queue.iter().enumerate() {
            let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            if let Err(r) = self.shared.acl.check(&self.user, &refs) {
                self.log_refusal(&r, Context::Multi, &refs);
                out.push((i, exec_error(r.denied)));
            }
        }
        self.update_meta(|m| m.multi = -1);
        out
    }
}

/// Put the refused commands' errors back at their places in EXEC's reply.
pub(crate) fn splice_refusals(
    step: crate::conn::Step,
    refused: Vec<(usize, String)>,
) -> crate::conn::Step {
    use crate::conn::Step;
    use crate::frame::Frame;
    let splice = |f: Frame| match f {
        Frame::Array(mut v) => {
            for (i, e) in refused {
                let at = i.min(v.len());
                v.insert(at, Frame::err(e));
            }
            Frame::Array(v)
        }
        other => other,
    };
    match step {
        Step::Reply(f) => Step::Reply(splice(f)),
        Step::Durable(f, d) => Step::Durable(splice(f), d),
        other => other,
    }
}

/// Kill `user`'s subscribers holding a subscription `patterns` no longer allow; true when
/// the calling connection is one of them.
fn kill_revoked_subscribers(conn: &crate::conn::Conn, user: &str, patterns: &[Vec<u8>]) -> bool {
    let clients: Vec<_> = conn
        .shared
        .clients
        .lock()
        .values()
        .filter(|c| {
            let m = c.meta.lock();
            m.user == user && m.sub + m.psub + m.ssub > 0
        })
        .cloned()
        .collect();
    let ids: Vec<u64> = clients.iter().map(|c| c.id).collect();
    let subs = conn.shared.pubsub.subscriptions_of(&ids);
    let mut me = false;
    for c in clients {
        let bad = subs
            .iter()
            .any(|(id, ch, pat)| *id == c.id && !subscription_allowed(patterns, ch, *pat));
        if bad {
            if c.id == conn.entry.id {
                me = true;
            } else {
                c.kill();
            }
        }
    }
    me
}
