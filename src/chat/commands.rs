//! The REPL's slash commands.

use crate::sample::{Param, SamplerConfig};
use std::path::PathBuf;

pub const HELP: &str = "\
commands:
  /help              this list
  /reset             forget the conversation (the system prompt stays)
  /system TEXT       set the system prompt (no TEXT: remove it)
  /save FILE         write the conversation as JSON
  /load FILE         read a conversation written by /save
  /stats             tokens and speeds of the last turn, context use
  /set KEY VALUE     temp, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed, n_predict
  /quit              leave (Ctrl-D or Ctrl-C at an empty prompt also do)
input:
  a line ending in \\ continues on the next line; a line with only \"\"\" starts or ends a
  block pasted over several lines; Ctrl-C stops an answer, clears a line, or (on an empty
  line) quits";

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Help,
    Reset,
    System(Option<String>),
    Save(PathBuf),
    Load(PathBuf),
    Stats,
    Set(Setting),
    Quit,
}

/// One `/set` change.
#[derive(Clone, Debug, PartialEq)]
pub enum Setting {
    Sampling(SamplerConfig),
    NPredict(usize),
}

/// Parses a line that starts with `/`; `Err` is a message for the user.
pub fn parse(line: &str, current: &SamplerConfig) -> Result<Command, String> {
    let line = line.trim();
    let (name, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let arg = arg.trim();
    let need = |what: &str| -> Result<PathBuf, String> {
        if arg.is_empty() {
            Err(format!("{name} needs {what}"))
        } else {
            Ok(PathBuf::from(arg))
        }
    };
    let no_arg = |c: Command| {
        if arg.is_empty() {
            Ok(c)
        } else {
            Err(format!("{name} takes no argument"))
        }
    };
    match name {
        "/help" | "/?" => no_arg(Command::Help),
        "/reset" | "/clear" => no_arg(Command::Reset),
        "/system" => Ok(Command::System((!arg.is_empty()).then(|| arg.to_string()))),
        "/save" => need("a file name").map(Command::Save),
        "/load" => need("a file name").map(Command::Load),
        "/stats" => no_arg(Command::Stats),
        "/set" => parse_set(arg, current).map(Command::Set),
        "/quit" | "/exit" | "/bye" => no_arg(Command::Quit),
        _ => Err(format!("unknown command {name} (/help lists them)")),
    }
}

fn parse_set(arg: &str, current: &SamplerConfig) -> Result<Setting, String> {
    let mut it = arg.split_whitespace();
    let (Some(key), Some(value), None) = (it.next(), it.next(), it.next()) else {
        return Err("usage: /set KEY VALUE (e.g. /set temp 0.7)".into());
    };
    let float = |param: Param| -> Result<f32, String> {
        let v = value
            .parse::<f32>()
            .map_err(|_| format!("{key} takes a number, not `{value}`"))?;
        param.check(v)
    };
    let int = || -> Result<u64, String> {
        value
            .parse::<u64>()
            .map_err(|_| format!("{key} takes a whole number, not `{value}`"))
    };
    let mut c = current.clone();
    match key {
        "temp" | "temperature" => c.temperature = float(Param::Temperature)?,
        "top_k" | "top-k" => c.top_k = int()? as usize,
        "top_p" | "top-p" => c.top_p = float(Param::TopP)?,
        "min_p" | "min-p" => c.min_p = float(Param::MinP)?,
        "repeat_penalty" | "repeat-penalty" => c.repeat_penalty = float(Param::RepeatPenalty)?,
        "repeat_last_n" | "repeat-last-n" => c.repeat_last_n = int()? as usize,
        "seed" => c.seed = int()?,
        "n_predict" | "n-predict" | "n" => return Ok(Setting::NPredict(int()? as usize)),
        _ => return Err(format!("unknown setting `{key}` (/help lists them)")),
    }
    Ok(Setting::Sampling(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command, String> {
        parse(line, &SamplerConfig::default())
    }

    #[test]
    fn commands_parse() {
        assert_eq!(p("/help"), Ok(Command::Help));
        assert_eq!(p("  /reset "), Ok(Command::Reset));
        assert_eq!(
            p("/system  Be terse. "),
            Ok(Command::System(Some("Be terse.".into())))
        );
        assert_eq!(p("/system"), Ok(Command::System(None)));
        assert_eq!(p("/save a b.json"), Ok(Command::Save("a b.json".into())));
        assert_eq!(p("/load x.json"), Ok(Command::Load("x.json".into())));
        assert_eq!(p("/stats"), Ok(Command::Stats));
        assert_eq!(p("/quit"), Ok(Command::Quit));
    }

    #[test]
    fn set_changes_one_field() {
        let Ok(Command::Set(Setting::Sampling(c))) = p("/set temp 0.7") else {
            panic!()
        };
        assert_eq!(
            c,
            SamplerConfig {
                temperature: 0.7,
                ..SamplerConfig::default()
            }
        );
        let Ok(Command::Set(Setting::Sampling(c))) = p("/set top_k 5") else {
            panic!()
        };
        assert_eq!(c.top_k, 5);
        let Ok(Command::Set(Setting::Sampling(c))) = p("/set seed 42") else {
            panic!()
        };
        assert_eq!(c.seed, 42);
        assert_eq!(
            p("/set n_predict 12"),
            Ok(Command::Set(Setting::NPredict(12)))
        );
    }

    #[test]
    fn bad_commands_say_why() {
        for (line, says) in [
            ("/save", "needs a file name"),
            ("/stats now", "takes no argument"),
            ("/set temp", "usage"),
            ("/set temp hot", "takes a number, not `hot`"),
            ("/set temp nan", "from 0 to 100, not NaN"),
            ("/set temp -1", "from 0 to 100, not -1"),
            ("/set repeat_penalty 0", "above 0"),
            ("/set min_p 2", "from 0 to 1"),
            ("/set top_p 1.5", "from 0 to 1"),
            ("/set top_k -1", "whole number"),
            ("/set colour red", "unknown setting"),
            ("/frobnicate", "unknown command"),
        ] {
            let e = p(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }
}
