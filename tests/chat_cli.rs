//! `tandem chat` as a user runs it: the REPL through a pseudo-terminal (streaming, Ctrl-C,
//! prefix reuse seen through `/stats`), piped input, and `--render`.

mod common;
#[path = "chat_data/support.rs"]
mod support;

use expectrl::{ControlCode, Eof, Expect, Regex, Session};
use serde_json::Value as Json;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tandem::gguf::Value;

const Q8: &str = "stories-moe/stories260K-moe8x-finetuned-Q8_0.gguf";

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

/// Runs `tandem chat ARGS` with `stdin` piped in.
fn chat_piped(args: &[&str], stdin: &str) -> Output {
    let mut child = tandem()
        .arg("chat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn number(caps: &expectrl::Captures, i: usize) -> usize {
    text(caps.get(i).unwrap()).parse().unwrap()
}

/// Type a message, watch the answer stream, stop it with Ctrl-C, get the prompt back, ask
/// again, and check with `/stats` that the second turn prefilled only the new tokens: the
/// whole first prompt and part of the interrupted answer came from the cache.
#[test]
fn repl_streams_stops_on_ctrl_c_and_reuses_the_cache() {
    let Some(model) = common::fixture(Q8) else {
        return;
    };
    let mut cmd = tandem();
    // A huge context and no EOS: the answer would run for minutes, so Ctrl-C lands mid-answer.
    cmd.args(["chat", "-m"])
        .arg(&model)
        .args(["--template", "mistral", "--ctx", "32768", "-n", "30000"])
        .args(["--ignore-eos", "--temp", "0", "-t", "1"])
        .env("TERM", "xterm");
    let mut p = Session::spawn(cmd).unwrap();
    // Generous: CI machines are slow and shared; nothing here is timed.
    p.set_expect_timeout(Some(Duration::from_secs(60)));
    p.expect("Ctrl-D to leave").unwrap();
    p.expect("> ").unwrap();

    p.send_line("Tell me a story.").unwrap();
    p.expect("Tell me a story.").unwrap(); // the echo
    p.expect(Regex(r"\w+\W+\w+\W+\w+\W+\w+")).unwrap(); // streamed words
    p.send(ControlCode::EndOfText).unwrap(); // Ctrl-C
    let first = p
        .expect(Regex(
            r"prompt (\d+) new at [^,]+, (\d+) cached \| [^|\]]+\| stopped",
        ))
        .unwrap();
    let (p1, cached1) = (number(&first, 1), number(&first, 2));
    assert_eq!(cached1, 0);
    p.expect("> ").unwrap();

    // Ctrl-C on a line with text clears it (and does not quit).
    p.send("draft").unwrap();
    p.send(ControlCode::EndOfText).unwrap();
    // A trailing backslash continues the message on the next line.
    p.send_line("What happened \\").unwrap();
    p.expect("... ").unwrap();
    p.send_line("next?").unwrap();
    p.expect("next?").unwrap();
    p.expect(Regex(r"\w+\W+\w+\W+\w+")).unwrap();
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("stopped").unwrap();
    p.expect("> ").unwrap();

    p.send_line("/stats").unwrap();
    let stats = p
        .expect(Regex(
            r"prompt (\d+) tokens, reused (\d+), prefilled (\d+) \([^)]*\), generated (\d+)",
        ))
        .unwrap();
    let (prompt, reused, prefilled) = (number(&stats, 1), number(&stats, 2), number(&stats, 3));
    assert_eq!(prefilled, prompt - reused);
    assert!(
        reused > p1,
        "the first prompt ({p1} tokens) and some of the first answer are reused: {reused}"
    );
    assert!(prefilled > 0 && prefilled < prompt - p1);
    p.expect("> ").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("conv.json");
    p.send_line(format!("/save {}", saved.display())).unwrap();
    p.expect("saved 4 messages").unwrap();
    let conv: Json = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(conv[0]["content"], "Tell me a story.");
    assert_eq!(
        conv[2]["content"], "What happened \nnext?",
        "the draft was cleared"
    );
    assert_eq!(conv[3]["role"], "assistant");
    p.send_line("/set temp 0.5").unwrap();
    p.expect("temp 0.5 |").unwrap();
    p.send_line("/reset").unwrap();
    p.expect("conversation cleared").unwrap();
    p.send_line(format!("/load {}", saved.display())).unwrap();
    p.expect("loaded 4 messages").unwrap();
    p.send_line("/bogus").unwrap();
    p.expect("unknown command /bogus").unwrap();
    p.expect("> ").unwrap();

    p.send(ControlCode::EndOfTransmission).unwrap(); // Ctrl-D at an empty prompt
    p.expect(Eof).unwrap();
}

/// `echo ... | tandem chat -m F` answers once and exits.
#[test]
fn piped_input_gets_one_answer() {
    let Some(model) = common::fixture(Q8) else {
        return;
    };
    let model = model.to_str().unwrap();
    let out = chat_piped(
        &[
            "-m",
            model,
            "--template",
            "chatml",
            "-n",
            "40",
            "--temp",
            "0",
        ],
        "Once upon a time, there was a little dog.\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let words = stdout
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic));
    assert!(words.count() >= 5, "stdout: {stdout:?}");
    assert!(stderr.contains("40 tokens | prompt"), "{stderr}");
    assert!(stderr.contains("stories260K"), "the summary line: {stderr}");

    // Mixtral's template has no system role: the system prompt is folded in, with one note.
    let out = chat_piped(
        &[
            "-m",
            model,
            "--system",
            "Be brief.",
            "-n",
            "4",
            "--temp",
            "0",
        ],
        "Hi",
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("no system role").count(), 1, "{stderr}");
    assert!(
        stderr.contains("using the built-in `mistral` template"),
        "{stderr}"
    );

    let out = chat_piped(&["-m", model], "  \n");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("stdin is empty"));
}

/// `--render` prints the prompt and ids a conversation becomes, through the same code a turn
/// uses: equal to Hugging Face's for Mixtral Instruct (system prompt folded, with a note).
#[test]
fn render_matches_hugging_face() {
    let Some(vocab) = common::fixture("tokenizers/ggml-vocab-mixtral.gguf") else {
        return;
    };
    for case in support::cases("mistral_expected.json") {
        let out = chat_piped(
            &[
                "-m",
                vocab.to_str().unwrap(),
                "--template",
                "mistral",
                "--render",
            ],
            &case.messages_json.to_string(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: Json = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["prompt"], case.prompt.as_str(), "{}", case.name);
        let ids: Vec<u32> = serde_json::from_value(v["ids"].clone()).unwrap();
        assert_eq!(ids, case.ids, "{}", case.name);
        assert_eq!(
            text(&out.stderr).contains("no system role"),
            case.name == "system",
            "{}",
            case.name
        );
    }
    let out = chat_piped(
        &["-m", vocab.to_str().unwrap(), "--render"],
        "[{\"role\": 1}]",
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("message 0: `role`"));
}

/// Without --template, `--render` uses the template stored in the GGUF.
#[test]
fn render_uses_the_gguf_template() {
    let Some(src) = common::fixture(Q8) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.gguf");
    let template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";
    support::copy_with(
        &src,
        &path,
        vec![("tokenizer.chat_template", Value::from(template))],
    );
    let out = chat_piped(
        &["-m", path.to_str().unwrap(), "--render"],
        r#"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]"#,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["prompt"],
        "[system] Be brief.</s>[user] Hi</s>[assistant]"
    );
    let ids: Vec<u32> = serde_json::from_value(v["ids"].clone()).unwrap();
    assert_eq!(
        ids.iter().filter(|&&i| i == 2).count(),
        2,
        "two EOS control ids: {ids:?}"
    );
}

/// The one runaway that minijinja's fuel misses (a list doubled past 32 concatenations) ends
/// the process with an error from the watchdog instead of exhausting memory.
#[test]
fn runaway_template_is_stopped_by_the_watchdog() {
    let Some(vocab) = common::fixture("tokenizers/ggml-vocab-mixtral.gguf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("doubling.jinja");
    std::fs::write(
        &t,
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
    )
    .unwrap();
    let out = chat_piped(
        &[
            "-m",
            vocab.to_str().unwrap(),
            "--render",
            "--template-file",
            t.to_str().unwrap(),
        ],
        r#"[{"role": "user", "content": "hi"}]"#,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ran away"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}
