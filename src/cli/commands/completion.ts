/**
 * `tokenwarden completion bash|zsh|fish`: a completion script made from the command
 * tree itself (commander has none built in), so a command or option added anywhere
 * completes without touching this file. Each script finds the command path typed so
 * far (the words that name commands, skipping options and their values) and offers
 * that command's subcommands and options.
 */
import type { Command, Option } from "commander";
import { invalidConfig } from "../../core/errors.js";

const SHELLS = ["bash", "zsh", "fish"] as const;
type Shell = (typeof SHELLS)[number];

interface Word {
  word: string;
  description: string;
}

/** Every command path ("" for the program) with what may follow it. */
export function completionTable(program: Command): Map<string, Word[]> {
  const table = new Map<string, Word[]>();
  const globals = visibleOptions(program);
  const walk = (command: Command, path: string, inherited: readonly Option[]) => {
    const own = path === "" ? [] : visibleOptions(command);
    const words: Word[] = command.commands.map((sub) => ({
      word: sub.name(),
      description: sub.description(),
    }));
    for (const choice of ARGUMENT_CHOICES[path] ?? [])
      words.push({ word: choice, description: "" });
    for (const option of [...own, ...inherited]) {
      if (option.long !== undefined)
        words.push({ word: option.long, description: option.description });
    }
    words.push({ word: "--help", description: "show help" });
    table.set(path, words);
    for (const sub of command.commands) {
      walk(sub, path === "" ? sub.name() : `${path} ${sub.name()}`, [...own, ...inherited]);
    }
  };
  walk(program, "", globals);
  return table;
}

/** Arguments with a fixed set of values. */
const ARGUMENT_CHOICES: Record<string, readonly string[]> = { completion: SHELLS };

function visibleOptions(command: Command): Option[] {
  return command.options.filter((o) => !o.hidden);
}

const single = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

function bash(name: string, table: Map<string, Word[]>): string {
  const cases = [...table]
    .map(
      ([path, words]) =>
        `    ${single(path)}) echo ${single(words.map((w) => w.word).join(" "))} ;;`,
    )
    .join("\n");
  return `# bash completion for ${name}: eval "$(${name} completion bash)"
_${name}_words() {
  case "$1" in
${cases}
  esac
}
_${name}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} at="" word next i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    [[ $word == -* ]] && continue
    next="\${at:+$at }$word"
    [[ -n "$(_${name}_words "$next")" ]] && at=$next
  done
  COMPREPLY=($(compgen -W "$(_${name}_words "$at")" -- "$cur"))
}
complete -F _${name} ${name}
`;
}

function zsh(name: string, table: Map<string, Word[]>): string {
  const entry = (w: Word) => `${w.word.replaceAll(":", "\\:")}:${w.description}`;
  const cases = [...table]
    .map(
      ([path, words]) =>
        `    ${single(path)}) reply=(${words.map((w) => single(entry(w))).join(" ")}) ;;`,
    )
    .join("\n");
  return `#compdef ${name}
# zsh completion for ${name}: ${name} completion zsh > "\${fpath[1]}/_${name}"
_${name}_words() {
  reply=()
  case "$1" in
${cases}
  esac
}
_${name}() {
  local at="" word next i
  local -a reply
  for ((i = 2; i < CURRENT; i++)); do
    word=\${words[i]}
    [[ $word == -* ]] && continue
    next="\${at:+$at }$word"
    _${name}_words "$next"
    (( \${#reply} )) && at=$next
  done
  _${name}_words "$at"
  _describe 'command or option' reply
}
compdef _${name} ${name}
`;
}

function fish(name: string, table: Map<string, Word[]>): string {
  const quote = (text: string) => `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  const paths = [...table.keys()].filter((p) => p !== "");
  const lines = [...table].flatMap(([path, words]) =>
    words.map((w) => {
      const at = `-n ${quote(`__${name}_at ${quote(path)}`)}`;
      const what = w.word.startsWith("--") ? `-l ${w.word.slice(2)}` : `-a ${quote(w.word)}`;
      return `complete -c ${name} ${at} ${what} -d ${quote(w.description)}`;
    }),
  );
  return `# fish completion for ${name}: ${name} completion fish > ~/.config/fish/completions/${name}.fish
function __${name}_path
  set -l known ${paths.map(quote).join(" ")}
  set -l at ''
  for word in (commandline -opc)[2..-1]
    string match -q -- '-*' $word; and continue
    set -l next (string trim -- "$at $word")
    contains -- $next $known; and set at $next
  end
  echo $at
end
function __${name}_at
  test (__${name}_path) = "$argv[1]"
end
complete -c ${name} -f
${lines.join("\n")}
`;
}

export function completionScript(program: Command, shell: string): string {
  const table = completionTable(program);
  const name = program.name();
  if (shell === "bash") return bash(name, table);
  if (shell === "zsh") return zsh(name, table);
  if (shell === "fish") return fish(name, table);
  throw invalidConfig("shell", `must be one of ${SHELLS.join(", ")}`);
}

export function registerCompletionCommand(program: Command): void {
  program
    .command("completion <shell>")
    .description(`print a shell completion script (${SHELLS.join(", ")})`)
    .addHelpText(
      "after",
      `
Examples:
  $ eval "$(tokenwarden completion bash)"          # in ~/.bashrc
  $ tokenwarden completion zsh > "\${fpath[1]}/_tokenwarden"
  $ tokenwarden completion fish > ~/.config/fish/completions/tokenwarden.fish`,
    )
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
    });
}
