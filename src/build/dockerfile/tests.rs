//! Unit tests of [`super`].
use super::*;

fn parse_ok(text: &str) -> Dockerfile {
    parse(text, "Dockerfile").unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> String {
    parse(text, "Dockerfile").unwrap_err().to_string()
}

/// The single instruction after `FROM scratch`.
fn one(text: &str) -> Instruction {
    let df = parse_ok(&format!("FROM scratch\n{text}"));
    assert_eq!(df.stages[0].steps.len(), 1, "{:?}", df.stages[0].steps);
    df.stages[0].steps[0].instruction.clone()
}

fn run(text: &str) -> Run {
    match one(text) {
        Instruction::Run(r) => r,
        other => panic!("not RUN: {other:?}"),
    }
}

fn copy(text: &str) -> Copy {
    match one(text) {
        Instruction::Copy(c) | Instruction::Add(c) => c,
        other => panic!("not COPY: {other:?}"),
    }
}

fn shell(s: &str) -> Command {
    Command::Shell(s.into())
}

fn exec(v: &[&str]) -> Command {
    Command::Exec(v.iter().map(|s| s.to_string()).collect())
}

/// The key/value pairs of an ENV or LABEL, as owned strings.
fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn simple_file() {
    let df = parse_ok("FROM busybox\nRUN echo hi\nCMD [\"sh\"]\n");
    assert_eq!(df.stages.len(), 1);
    assert_eq!(df.stages[0].base, "busybox");
    assert_eq!(df.stages[0].line, 1);
    let steps = &df.stages[0].steps;
    assert_eq!(steps[0].line, 2);
    assert_eq!(steps[0].text, "RUN echo hi");
    assert_eq!(steps[1].instruction, Instruction::Cmd(exec(&["sh"])));
    assert_eq!(df.escape, '\\');
}

#[test]
fn instructions_are_case_insensitive() {
    let df = parse_ok("from busybox As Build\nrun echo hi\nWorkDir /app\n");
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert!(matches!(
        df.stages[0].steps[0].instruction,
        Instruction::Run(_)
    ));
    assert_eq!(
        df.stages[0].steps[1].instruction,
        Instruction::Workdir("/app".into())
    );
}

#[test]
fn unknown_instruction_names_file_and_line() {
    let text = "FROM a\n\n# c\nRUN x\nENV a=b\n\nRUNN apt-get\n";
    assert_eq!(
        parse_err(text),
        "Dockerfile:7: unknown instruction \"RUNN\" (did you mean RUN?)"
    );
    assert_eq!(
        parse_err("FROM a\nfrobnicate x\n"),
        "Dockerfile:2: unknown instruction \"frobnicate\""
    );
    assert!(parse_err("FROM a\nCPY a b\n").ends_with("(did you mean COPY?)"));
    assert!(parse_err("FROM a\nENTRYPIONT x\n").ends_with("(did you mean ENTRYPOINT?)"));
}

#[test]
fn instruction_before_from_is_an_error() {
    let e = parse_err("RUN echo\nFROM a\n");
    assert!(
        e.starts_with("Dockerfile:1: RUN before the first FROM"),
        "{e}"
    );
}

#[test]
fn no_from_is_an_error() {
    assert!(parse_err("").contains("no FROM"));
    assert!(parse_err("ARG A=1\n").contains("no FROM"));
}

#[test]
fn global_args_before_from() {
    let df = parse_ok("ARG VERSION=1.0\nARG BASE\nFROM img:${VERSION}\nARG VERSION\n");
    assert_eq!(
        df.global_args,
        vec![
            ArgDecl {
                name: "VERSION".into(),
                default: Some("1.0".into())
            },
            ArgDecl {
                name: "BASE".into(),
                default: None
            }
        ]
    );
    assert_eq!(df.stages[0].base, "img:${VERSION}");
    assert_eq!(
        df.stages[0].steps[0].instruction,
        Instruction::Arg(vec![ArgDecl {
            name: "VERSION".into(),
            default: None
        }])
    );
}

#[test]
fn arg_several_and_quoted() {
    assert_eq!(
        one("ARG A=1 B=\"x y\" C"),
        Instruction::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: Some("1".into())
            },
            ArgDecl {
                name: "B".into(),
                default: Some("\"x y\"".into())
            },
            ArgDecl {
                name: "C".into(),
                default: None
            },
        ])
    );
}

#[test]
fn from_platform_and_stages() {
    let df = parse_ok(
        "FROM --platform=linux/amd64 golang:1.22 AS build\nRUN go build\nFROM scratch\nCOPY --from=build /out /app\n",
    );
    assert_eq!(df.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[1].base, "scratch");
    assert_eq!(df.stages[1].name, None);
    assert_eq!(df.stages[1].line, 3);
    let c = match &df.stages[1].steps[0].instruction {
        Instruction::Copy(c) => c.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(c.from.as_deref(), Some("build"));
}

#[test]
fn from_errors() {
    assert!(parse_err("FROM a b\n").contains("one or three arguments"));
    assert!(parse_err("FROM a AS 1x\n").contains("invalid name for build stage"));
    assert!(parse_err("FROM a AS b c\n").contains("one or three"));
    assert!(parse_err("FROM --foo=1 a\n").contains("unknown flag: --foo"));
}

#[test]
fn continuation_joins_lines() {
    let r = run("RUN apt-get update && \\\n    apt-get install -y curl");
    assert_eq!(
        r.command,
        shell("apt-get update &&     apt-get install -y curl")
    );
}

#[test]
fn continuation_with_comment_and_empty_lines() {
    let df = parse_ok(
        "FROM a\nRUN echo one \\\n# a comment\n\n   # indented\n  two \\\n\n  three\nRUN next\n",
    );
    let steps = &df.stages[0].steps;
    assert_eq!(
        steps[0].instruction,
        Instruction::Run(Run {
            command: shell("echo one   two   three"),
            mounts: vec![],
            network: None,
            heredocs: vec![]
        })
    );
    assert_eq!(steps[0].line, 2);
    assert_eq!(steps[1].line, 9);
}

#[test]
fn continuation_with_trailing_blanks_after_escape() {
    assert_eq!(run("RUN a \\  \t\n b").command, shell("a  b"));
}

#[test]
fn continuation_at_end_of_file() {
    assert_eq!(run("RUN a \\").command, shell("a"));
}

#[test]
fn comment_only_at_line_start() {
    assert_eq!(
        run("RUN echo hi # not a comment").command,
        shell("echo hi # not a comment")
    );
}

#[test]
fn escape_directive_backtick() {
    let df = parse_ok("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo hi\nCOPY a\\b c:\\dest\\\n");
    assert_eq!(df.escape, '`');
    let steps = &df.stages[0].steps;
    assert_eq!(
        steps[0].instruction,
        Instruction::Run(Run {
            command: shell("dir c:\\   && echo hi"),
            mounts: vec![],
            network: None,
            heredocs: vec![]
        })
    );
    // with ` as escape, a trailing \ is not a continuation
    match &steps[1].instruction {
        Instruction::Copy(c) => assert_eq!(c.dest, "c:\\dest\\"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn escape_directive_only_at_top() {
    // after a comment it is a comment, so ` is no continuation
    let df = parse_ok("# hello\n# escape=`\nFROM a\nRUN a \\\n b\n");
    assert_eq!(df.escape, '\\');
    assert_eq!(
        df.stages[0].steps[0].instruction,
        Instruction::Run(Run {
            command: shell("a  b"),
            mounts: vec![],
            network: None,
            heredocs: vec![]
        })
    );
    // after an empty line too
    assert_eq!(parse_ok("\n# escape=`\nFROM a\n").escape, '\\');
}

#[test]
fn directives_syntax_and_escape_together() {
    let df = parse_ok("# syntax=docker/dockerfile:1\n#escape = `\nFROM a\n");
    assert_eq!(df.escape, '`');
}

#[test]
fn directive_errors() {
    assert!(parse_err("# escape=x\nFROM a\n").contains("invalid escape token"));
    assert!(
        parse_err("# escape=`\n# escape=\\\nFROM a\n").contains("only one escape parser directive")
    );
}

#[test]
fn crlf_and_bom() {
    let df = parse_ok("\u{feff}FROM a\r\nRUN echo \\\r\n hi\r\n");
    assert_eq!(
        df.stages[0].steps[0].instruction,
        Instruction::Run(Run {
            command: shell("echo  hi"),
            mounts: vec![],
            network: None,
            heredocs: vec![]
        })
    );
}

#[test]
fn exec_form_and_shell_form() {
    assert_eq!(
        one("CMD [\"echo\", \"a b\"]"),
        Instruction::Cmd(exec(&["echo", "a b"]))
    );
    assert_eq!(
        one("ENTRYPOINT [ \"/app\" ]"),
        Instruction::Entrypoint(exec(&["/app"]))
    );
    assert_eq!(one("CMD echo hi"), Instruction::Cmd(shell("echo hi")));
    assert_eq!(run("RUN [\"ls\", \"-l\"]").command, exec(&["ls", "-l"]));
}

#[test]
fn invalid_json_falls_back_to_shell_form() {
    assert_eq!(one("CMD [echo, hi]"), Instruction::Cmd(shell("[echo, hi]")));
    assert_eq!(one("CMD ['echo']"), Instruction::Cmd(shell("['echo']")));
    assert_eq!(one("CMD [\"a\""), Instruction::Cmd(shell("[\"a\"")));
}

#[test]
fn json_array_of_non_strings_is_an_error() {
    let e = parse_err("FROM a\nCMD [\"a\", 1]\n");
    assert!(
        e.contains("arrays must be comprised of strings only"),
        "{e}"
    );
    assert!(parse_err("FROM a\nCOPY [1, 2]\n").contains("strings only"));
}

#[test]
fn json_text_after_the_array_is_ignored() {
    // as Go's json.Decoder, which reads the first value only
    assert_eq!(one("CMD [\"a\"] trailing"), Instruction::Cmd(exec(&["a"])));
}

#[test]
fn escaped_escape_is_not_a_continuation() {
    let df = parse_ok("FROM a\nRUN echo \\\\\nRUN next\n");
    let steps = &df.stages[0].steps;
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].text, "RUN echo \\\\");
    // a lone escape on a line continues
    assert_eq!(run("RUN a \\\n\\\n b").command, shell("a  b"));
}

#[test]
fn exec_form_across_continuations() {
    assert_eq!(
        one("CMD [\"a\", \\\n  \"b\"]"),
        Instruction::Cmd(exec(&["a", "b"]))
    );
}

#[test]
fn env_forms() {
    assert_eq!(
        one("ENV A=1 B=\"v 2\" C=x\\ y"),
        Instruction::Env(pairs(&[("A", "1"), ("B", "\"v 2\""), ("C", "x\\ y")]))
    );
    assert_eq!(
        one("ENV PATH /usr/local/bin:$PATH and more"),
        Instruction::Env(pairs(&[("PATH", "/usr/local/bin:$PATH and more")]))
    );
    assert!(parse_err("FROM a\nENV A\n").contains("ENV must have two arguments"));
    assert!(parse_err("FROM a\nENV A=1 B\n").contains("can't find = in \"B\""));
    assert!(parse_err("FROM a\nENV\n").contains("ENV requires at least one argument"));
}

#[test]
fn label_forms() {
    assert_eq!(
        one("LABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0 multi=\"a \\\n b\""),
        Instruction::Label(pairs(&[
            ("\"com.example.vendor\"", "\"ACME Inc\""),
            ("version", "1.0"),
            ("multi", "\"a  b\""),
        ]))
    );
    assert_eq!(
        one("LABEL maintainer someone@example.com"),
        Instruction::Label(pairs(&[("maintainer", "someone@example.com")]))
    );
}

#[test]
fn simple_instructions() {
    assert_eq!(one("USER app:app"), Instruction::User("app:app".into()));
    assert_eq!(
        one("STOPSIGNAL SIGTERM"),
        Instruction::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        one("MAINTAINER Jane <j@x>"),
        Instruction::Maintainer("Jane <j@x>".into())
    );
    assert_eq!(
        one("EXPOSE 80 53/udp $PORT"),
        Instruction::Expose(vec!["80".into(), "53/udp".into(), "$PORT".into()])
    );
    assert_eq!(
        one("VOLUME [\"/data\", \"/logs\"]"),
        Instruction::Volume(vec!["/data".into(), "/logs".into()])
    );
    assert_eq!(
        one("VOLUME /data /logs"),
        Instruction::Volume(vec!["/data".into(), "/logs".into()])
    );
    assert!(parse_err("FROM a\nWORKDIR\n").contains("WORKDIR requires at least one argument"));
}

#[test]
fn shell_exec_form_only() {
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-c\"]"),
        Instruction::Shell(vec!["/bin/bash".into(), "-c".into()])
    );
    assert!(parse_err("FROM a\nSHELL /bin/bash -c\n").contains("JSON form"));
}

#[test]
fn onbuild() {
    assert_eq!(
        one("ONBUILD RUN make"),
        Instruction::Onbuild("RUN make".into())
    );
    assert!(parse_err("FROM a\nONBUILD ONBUILD RUN x\n").contains("isn't allowed"));
    assert!(parse_err("FROM a\nONBUILD FROM x\n").contains("isn't allowed as an ONBUILD trigger"));
    assert!(parse_err("FROM a\nONBUILD BLAH x\n").contains("unknown instruction"));
}

#[test]
fn run_mounts() {
    let r = run(
        "RUN --mount=type=secret,id=npmrc,target=/root/.npmrc,required --mount=type=cache,target=/root/.npm,sharing=locked,mode=0700,uid=1000 \\\n  --mount=type=bind,source=src,target=/src,from=build,rw --mount=type=tmpfs,target=/tmp,size=64m npm ci",
    );
    assert_eq!(r.command, shell("npm ci"));
    assert_eq!(
        r.mounts,
        vec![
            RunMount::Secret {
                id: "npmrc".into(),
                target: Some("/root/.npmrc".into()),
                required: true,
                mode: None,
                uid: None,
                gid: None
            },
            RunMount::Cache {
                target: "/root/.npm".into(),
                id: None,
                sharing: "locked".into(),
                mode: Some(0o700),
                uid: Some(1000),
                gid: None
            },
            RunMount::Bind {
                source: "src".into(),
                target: "/src".into(),
                from: Some("build".into()),
                rw: true
            },
            RunMount::Tmpfs {
                target: "/tmp".into(),
                size: Some(64 << 20)
            },
        ]
    );
}

#[test]
fn run_mount_defaults() {
    let r = run("RUN --mount=type=secret,id=tok cat /run/secrets/tok");
    assert_eq!(
        r.mounts[0],
        RunMount::Secret {
            id: "tok".into(),
            target: None,
            required: false,
            mode: None,
            uid: None,
            gid: None
        }
    );
    // the secret id defaults to the target's base name
    let r = run("RUN --mount=type=secret,target=/run/secrets/aws cat x");
    assert!(matches!(&r.mounts[0], RunMount::Secret { id, .. } if id == "aws"));
    // type defaults to bind, read-only
    let r = run("RUN --mount=target=/ctx ls /ctx");
    assert_eq!(
        r.mounts[0],
        RunMount::Bind {
            source: "/".into(),
            target: "/ctx".into(),
            from: None,
            rw: false
        }
    );
    let r = run("RUN --mount=type=cache,target=/c x");
    assert!(matches!(&r.mounts[0], RunMount::Cache { sharing, .. } if sharing == "shared"));
}

#[test]
fn run_mount_errors() {
    assert!(parse_err("FROM a\nRUN --mount=type=ssh x\n").contains("unsupported mount type"));
    assert!(parse_err("FROM a\nRUN --mount=type=secret x\n").contains("one of id, source, target"));
    assert!(parse_err("FROM a\nRUN --mount=type=cache x\n").contains("needs a target"));
    assert!(
        parse_err("FROM a\nRUN --mount=type=cache,target=/c,sharing=x x\n").contains("sharing")
    );
    assert!(
        parse_err("FROM a\nRUN --mount=type=cache,target=/c,bogus=1 x\n")
            .contains("unexpected key")
    );
    assert!(
        parse_err("FROM a\nRUN --mount=type=cache,target=/c,mode=9 x\n").contains("invalid value")
    );
}

#[test]
fn run_mount_option_checks() {
    let cases = [
        (
            "type=bind,target=/a,mode=0755",
            "mode not allowed for \"bind\"",
        ),
        ("type=tmpfs,target=/a,uid=1", "uid not allowed"),
        ("type=secret,id=a,sharing=locked", "invalid cache sharing"),
        ("type=cache,target=/a,required", "unexpected key 'required'"),
        ("type=cache,target=/a,size=1m", "unexpected key 'size'"),
        (
            "type=cache,target=/a,nosuid",
            "invalid field 'nosuid' must be a key=value pair",
        ),
        ("type=secret,id=a,source=b", "both source and id"),
        ("type=secret,id=a,from=x", "should not have a from"),
        (
            "type=bind,target=/a,from=$STAGE",
            "doesn't support variable expansion",
        ),
        ("type=bind,target=/a,ro=maybe", "invalid value"),
    ];
    for (spec, want) in cases {
        let e = parse_err(&format!("FROM a\nRUN --mount={spec} x\n"));
        assert!(e.contains(want), "{spec}: {e}");
    }
}

#[test]
fn run_mount_secret_source_is_the_id_and_ro_rw() {
    let r = run("RUN --mount=type=secret,source=tok,target=/t,required=false x");
    assert!(matches!(&r.mounts[0], RunMount::Secret { id, required: false, .. } if id == "tok"));
    let r = run("RUN --mount=type=bind,target=/a,readonly=false x");
    assert!(matches!(&r.mounts[0], RunMount::Bind { rw: true, .. }));
    let r = run("RUN --mount=type=bind,target=/a,rw,ro x");
    assert!(matches!(&r.mounts[0], RunMount::Bind { rw: false, .. }));
    let r = run("RUN --mount=type=cache,target=/root/.cache/$NAME x");
    assert!(
        matches!(&r.mounts[0], RunMount::Cache { target, .. } if target == "/root/.cache/$NAME")
    );
}

#[test]
fn run_network_and_unknown_flag() {
    assert_eq!(
        run("RUN --network=none ping x").network.as_deref(),
        Some("none")
    );
    assert!(parse_err("FROM a\nRUN --network=bridge x\n").contains("unsupported network"));
    let e = parse_err("FROM a\nRUN --security=insecure x\n");
    assert_eq!(e, "Dockerfile:2: unknown flag: --security");
    assert!(
        parse_err("FROM a\nRUN --mount=type=cache,target=/c\n")
            .contains("requires at least one argument")
    );
}

#[test]
fn flags_quoted_and_double_dash() {
    let r = run("RUN --mount=\"type=cache,target=/a b\" -- --not-a-flag");
    assert!(matches!(&r.mounts[0], RunMount::Cache { target, .. } if target == "/a b"));
    assert_eq!(r.command, shell("--not-a-flag"));
}

#[test]
fn copy_flags() {
    let c = copy(
        "COPY --chown=app:app --chmod=0755 --link --exclude=*.md --exclude=tmp package*.json ./",
    );
    assert_eq!(c.sources, vec!["package*.json".to_string()]);
    assert_eq!(c.dest, "./");
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link);
    assert_eq!(c.exclude, vec!["*.md".to_string(), "tmp".to_string()]);
    assert!(!copy("COPY --link=false a b").link);
}

#[test]
fn copy_json_form_and_errors() {
    let c = copy("COPY [\"my file\", \"other\", \"/dest dir/\"]");
    assert_eq!(c.sources, vec!["my file".to_string(), "other".to_string()]);
    assert_eq!(c.dest, "/dest dir/");
    assert!(parse_err("FROM a\nCOPY onlyone\n").contains("at least two arguments"));
    assert!(parse_err("FROM a\nADD --from=x a b\n").contains("unknown flag: --from"));
    assert!(parse_err("FROM a\nCOPY --chown a b\n").contains("missing a value"));
    assert!(parse_err("FROM a\nCOPY --from=a --from=b a b\n").contains("duplicate flag"));
}

#[test]
fn add_instruction() {
    match one("ADD --chown=1:1 app.tar.gz /opt/") {
        Instruction::Add(c) => {
            assert_eq!(c.sources, vec!["app.tar.gz".to_string()]);
            assert_eq!(c.chown.as_deref(), Some("1:1"));
            assert_eq!(c.from, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn heredoc_run_script() {
    let df = parse_ok("FROM a\nRUN <<EOF\necho \"$HOME\"\necho done\nEOF\nRUN next\n");
    let steps = &df.stages[0].steps;
    let r = match &steps[0].instruction {
        Instruction::Run(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(r.command, shell("<<EOF"));
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "echo \"$HOME\"\necho done\n".into(),
            expand: true
        }]
    );
    assert_eq!(r.heredoc_script(), Some(&r.heredocs[0]));
    assert_eq!(steps[1].line, 6);
    assert_eq!(steps[1].text, "RUN next");
}

#[test]
fn heredoc_quoted_delimiter_no_expansion() {
    let r = run("RUN <<'EOF'\necho $VAR\nEOF");
    assert_eq!(r.heredocs[0].name, "EOF");
    assert!(!r.heredocs[0].expand);
    assert_eq!(r.heredocs[0].content, "echo $VAR\n");
    let r = run("RUN <<\"EOT\"\necho $VAR\nEOT");
    assert!(!r.heredocs[0].expand);
    let r = run("RUN <<EOT\necho $VAR\nEOT");
    assert!(r.heredocs[0].expand);
}

#[test]
fn heredoc_chomp_tabs() {
    let r = run("RUN <<-EOF\n\techo a\n\t\techo b\n\tEOF");
    assert_eq!(r.heredocs[0].content, "echo a\necho b\n");
    // without -, a tab-indented delimiter does not end it
    let e = parse_err("FROM a\nRUN <<EOF\n\techo a\n\tEOF\n");
    assert!(e.contains("unterminated heredoc"), "{e}");
}

#[test]
fn heredoc_inside_shell_command() {
    let r = run("RUN cat <<EOF > /etc/motd\nhello\nEOF");
    assert_eq!(r.command, shell("cat <<EOF > /etc/motd"));
    assert_eq!(r.heredoc_script(), None);
    assert_eq!(
        r.shell_with_heredocs().as_deref(),
        Some("cat <<EOF > /etc/motd\nhello\nEOF")
    );
}

#[test]
fn several_heredocs_on_one_line() {
    let r = run("RUN cat <<A <<-B > /x\na1\nA\n\tb1\n\tB");
    assert_eq!(r.heredocs.len(), 2);
    assert_eq!(r.heredocs[0].name, "A");
    assert_eq!(r.heredocs[0].content, "a1\n");
    assert_eq!(r.heredocs[1].name, "B");
    assert_eq!(r.heredocs[1].content, "b1\n");
}

#[test]
fn heredoc_body_keeps_comments_and_backslashes() {
    let r = run("RUN <<EOF\n# a shell comment\necho a \\\n  b\n\nEOF");
    assert_eq!(
        r.heredocs[0].content,
        "# a shell comment\necho a \\\n  b\n\n"
    );
}

#[test]
fn heredoc_after_continuation() {
    let r = run("RUN --mount=type=cache,target=/c \\\n  <<EOF\nls /c\nEOF");
    assert_eq!(r.heredocs[0].content, "ls /c\n");
    assert_eq!(r.mounts.len(), 1);
}

#[test]
fn copy_heredocs() {
    let c = copy(
        "COPY <<robots.txt <<-\"humans.txt\" /usr/share/html/\nUser-agent: *\nrobots.txt\n\t$NAME\n\thumans.txt",
    );
    assert_eq!(
        c.sources,
        vec!["<<robots.txt".to_string(), "<<humans.txt".to_string()]
    );
    assert_eq!(c.dest, "/usr/share/html/");
    assert_eq!(c.heredocs[0].content, "User-agent: *\n");
    assert!(c.heredocs[0].expand);
    assert_eq!(c.heredocs[1].content, "$NAME\n");
    assert!(!c.heredocs[1].expand);
}

#[test]
fn heredoc_not_in_exec_form_or_other_instructions() {
    assert_eq!(run("RUN [\"cat\", \"<<EOF\"]").heredocs, vec![]);
    assert_eq!(one("CMD cat <<EOF"), Instruction::Cmd(shell("cat <<EOF")));
    // a quoted marker is not a heredoc
    assert_eq!(run("RUN echo \"<<EOF\"").heredocs, vec![]);
    // `<< EOF` with a blank is not one either (as BuildKit)
    assert_eq!(run("RUN cat << EOF").heredocs, vec![]);
}

#[test]
fn heredoc_as_copy_destination_is_an_error() {
    let e = parse_err("FROM a\nCOPY a <<EOF\nx\nEOF\n");
    assert!(
        e.contains("COPY cannot accept a heredoc as a destination"),
        "{e}"
    );
}

#[test]
fn onbuild_with_heredoc() {
    let df = parse_ok("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nRUN x\n");
    let steps = &df.stages[0].steps;
    assert_eq!(
        steps[0].instruction,
        Instruction::Onbuild("RUN <<EOF\necho hi\nEOF".into())
    );
    assert_eq!(steps[1].line, 5);
}

#[test]
fn unterminated_heredoc() {
    let e = parse_err("FROM a\nRUN <<EOF\necho\n");
    assert_eq!(e, "Dockerfile:2: unterminated heredoc \"EOF\"");
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        one(
            "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --retries=3 CMD curl -f http://localhost/ || exit 1"
        ),
        Instruction::Healthcheck(Healthcheck::Check {
            command: shell("curl -f http://localhost/ || exit 1"),
            interval: Some(30_000_000_000),
            timeout: Some(90_000_000_000),
            start_period: Some(500_000_000),
            start_interval: None,
            retries: Some(3)
        })
    );
    assert_eq!(
        one("HEALTHCHECK cmd [\"/bin/check\"]"),
        Instruction::Healthcheck(Healthcheck::Check {
            command: exec(&["/bin/check"]),
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None
        })
    );
}

#[test]
fn healthcheck_errors() {
    assert!(parse_err("FROM a\nHEALTHCHECK NONE x\n").contains("takes no arguments"));
    assert!(parse_err("FROM a\nHEALTHCHECK --retries=0 CMD x\n").contains("at least 1 (not 0)"));
    assert_eq!(
        one("HEALTHCHECK --interval=5s NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    assert!(parse_err("FROM a\nHEALTHCHECK echo\n").contains("try CMD"));
    assert!(parse_err("FROM a\nHEALTHCHECK --interval=abc CMD x\n").contains("invalid --interval"));
    assert!(parse_err("FROM a\nHEALTHCHECK --interval=10us CMD x\n").contains("less than 1ms"));
    assert!(parse_err("FROM a\nHEALTHCHECK --retries=-1 CMD x\n").contains("--retries"));
    assert!(parse_err("FROM a\nHEALTHCHECK --bogus=1 CMD x\n").contains("unknown flag"));
}

#[test]
fn durations() {
    assert_eq!(parse_duration("0"), Some(0));
    assert_eq!(parse_duration("1h"), Some(3_600_000_000_000));
    assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
    assert_eq!(parse_duration("2m3s4ms"), Some(123_004_000_000));
    assert_eq!(parse_duration("10"), None);
    assert_eq!(parse_duration("-1s"), None);
    assert_eq!(parse_duration(""), None);
    assert_eq!(parse_duration("1d"), None);
}

#[test]
fn flags_on_plain_instructions_are_refused() {
    assert_eq!(
        parse_err("FROM a\nCMD --help\n"),
        "Dockerfile:2: unknown flag: --help"
    );
    assert!(parse_err("FROM a\nWORKDIR --x=1 /a\n").contains("unknown flag"));
}

#[test]
fn step_text_is_joined_line() {
    let df = parse_ok("FROM a\nrun   echo a \\\n   b   \n");
    assert_eq!(df.stages[0].steps[0].text, "run   echo a    b");
}

#[test]
fn parse_words_keeps_quotes() {
    assert_eq!(
        parse_words("a=\"x y\" b='c d' e\\ f", '\\'),
        vec!["a=\"x y\"", "b='c d'", "e\\ f"]
    );
    assert_eq!(parse_words("  ", '\\'), Vec::<String>::new());
    assert_eq!(parse_words("a`  b", '`'), vec!["a` ", "b"]);
    assert_eq!(parse_words("a \\", '\\'), vec!["a"]);
    assert_eq!(parse_words("\"\" b", '\\'), vec!["\"\"", "b"]);
}

const NODE_APP: &str = r#"# syntax=docker/dockerfile:1
# A Node app as in the getting-started tutorial.
ARG NODE_VERSION=20
FROM node:${NODE_VERSION}-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=npmrc,target=/root/.npmrc \
    npm ci --omit=dev

FROM node:${NODE_VERSION}-alpine
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
USER node
EXPOSE ${PORT}
HEALTHCHECK --interval=30s --timeout=3s CMD wget -qO- http://localhost:${PORT}/health || exit 1
CMD ["node", "src/index.js"]
"#;

#[test]
fn node_tutorial_dockerfile() {
    let df = parse_ok(NODE_APP);
    assert_eq!(
        df.global_args,
        vec![ArgDecl {
            name: "NODE_VERSION".into(),
            default: Some("20".into())
        }]
    );
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].base, "node:${NODE_VERSION}-alpine");
    assert_eq!(df.stages[0].name.as_deref(), Some("deps"));
    assert_eq!(df.stages[0].line, 4);
    let deps = &df.stages[0].steps;
    assert_eq!(deps.len(), 3);
    let Instruction::Run(run) = &deps[2].instruction else {
        panic!("{:?}", deps[2]);
    };
    assert_eq!(run.command, shell("npm ci --omit=dev"));
    assert_eq!(run.mounts.len(), 2);
    assert_eq!(deps[2].line, 7);
    let last = &df.stages[1].steps;
    assert_eq!(df.stages[1].line, 11);
    assert_eq!(
        last[0].instruction,
        Instruction::Env(pairs(&[("NODE_ENV", "production"), ("PORT", "3000")]))
    );
    assert_eq!(
        last.last().unwrap().instruction,
        Instruction::Cmd(exec(&["node", "src/index.js"]))
    );
    assert_eq!(last.last().unwrap().line, 20);
    assert!(matches!(
        &last[6].instruction,
        Instruction::Healthcheck(Healthcheck::Check {
            interval: Some(30_000_000_000),
            ..
        })
    ));
}

#[test]
fn parsed_words_go_through_subst() {
    use crate::build::subst;
    let df = parse_ok("FROM a\nENV A=1 B=\"v $A\" C='$A' D=x\\ y\nCOPY ${SRC:-src}/*.json /app/\n");
    let Instruction::Env(pairs) = &df.stages[0].steps[0].instruction else {
        panic!()
    };
    let lookup = |k: &str| (k == "A").then(|| "old".to_string());
    let expanded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| {
            (
                subst::expand(k, df.escape, lookup).unwrap(),
                subst::expand(v, df.escape, lookup).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        expanded,
        vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "v old".to_string()),
            ("C".to_string(), "$A".to_string()),
            ("D".to_string(), "x y".to_string()),
        ]
    );
    let Instruction::Copy(c) = &df.stages[0].steps[1].instruction else {
        panic!()
    };
    assert_eq!(
        subst::expand(&c.sources[0], df.escape, |_| None).unwrap(),
        "src/*.json"
    );
    assert_eq!(
        subst::referenced_vars(&c.sources[0], df.escape),
        vec!["SRC"]
    );
}

#[test]
fn multistage_with_heredoc_and_index_from() {
    let text = "FROM golang:1.22 AS build\nWORKDIR /src\nCOPY <<EOF main.go\npackage main\nfunc main() { println(\"hi\") }\nEOF\nRUN <<-SH\n\tset -e\n\tgo build -o /out/app main.go\n\tSH\nFROM scratch\nCOPY --from=0 /out/app /app\nENTRYPOINT [\"/app\"]\n";
    let df = parse_ok(text);
    assert_eq!(df.stages.len(), 2);
    let build = &df.stages[0].steps;
    let Instruction::Copy(c) = &build[1].instruction else {
        panic!()
    };
    assert_eq!(c.sources, vec!["<<EOF".to_string()]);
    assert_eq!(c.dest, "main.go");
    assert_eq!(
        c.heredocs[0].content,
        "package main\nfunc main() { println(\"hi\") }\n"
    );
    let Instruction::Run(r) = &build[2].instruction else {
        panic!()
    };
    assert_eq!(
        r.heredoc_script().unwrap().content,
        "set -e\ngo build -o /out/app main.go\n"
    );
    assert_eq!(build[2].line, 7);
    assert_eq!(df.stages[1].line, 11);
    assert_eq!(
        df.stages[1].steps[1].instruction,
        Instruction::Entrypoint(exec(&["/app"]))
    );
}

/// A fixed-seed generator of texts made of the characters that matter
/// to the parser.
fn fuzz_texts(count: usize, alphabet: &[&str]) -> Vec<String> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % 40) as usize;
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        })
        .collect()
}

#[test]
fn fuzz_never_panics_and_errors_point_into_the_file() {
    let alphabet = [
        "FROM a\n",
        "RUN ",
        "COPY ",
        "ENV ",
        "ARG ",
        "ONBUILD ",
        "HEALTHCHECK ",
        "CMD ",
        "<<",
        "<<-",
        "EOF",
        "\n",
        "\t",
        " ",
        "\\",
        "`",
        "#",
        "# escape=`\n",
        "\"",
        "'",
        "[",
        "]",
        ",",
        "=",
        "$",
        "{",
        "}",
        "--mount=",
        "type=cache",
        "--",
        "µ",
        "é\u{301}",
        "\r\n",
    ];
    for text in fuzz_texts(3000, &alphabet) {
        let lines = text.split('\n').count();
        match parse(&text, "Dockerfile") {
            Ok(df) => assert!(!df.stages.is_empty()),
            Err(e) => assert!(e.line >= 1 && e.line <= lines, "{e} in {text:?}"),
        }
    }
}
