#!/usr/bin/env python3
"""The quickstart of infra/README.md ("From clone to a working Slack app"), read from the README
and run where it can run here, so that the README cannot drift from the code.

Every command is taken from the section's ```sh blocks, in order, following `cd`. Each one is
  - run: `powerpole slack manifest` (its JSON holds the three request URLs), `powerpole config
    check` and `powerpole db admin-sql` on the example configuration, `aws secretsmanager
    create-secret` and `put-secret-value` against moto (a fresh moto account per run; the
    secret must exist before a value is put, and its name must be one terraform.tfvars.example
    uses);
  - checked: `make dist` (the Makefile target, where scripts/dist.sh writes the four zips, and
    that the example's lambda_zip_dir, as variables.tf defaults it and terraform.tfvars.example
    sets it, points there, with the four zip names the example passes the module), `cargo build
    -p NAME` (a package of the workspace), `cp SRC DST` (SRC exists; DST stands for SRC after);
  - or not run, with the reason (terraform apply, mysql, doctor: they need an AWS account).
Every `terraform output NAME`, wherever it appears (in `$(...)` too), must be an output of
infra/examples/complete. A command the test does not know fails it: extend the test with the
README.

Usage: quickstart_test.py POWERPOLE_BINARY   (needs the moto stand-in: AWS_ENDPOINT_URL, or
.local/standins.env as `scripts/standins.sh start` writes it; exit 1 on any problem)
"""
from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "infra" / "README.md"
EXAMPLE = ROOT / "infra" / "examples" / "complete"
SECTION = "## From clone to a working Slack app"


def commands() -> list[str]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end > 0 else len(text)]
    out = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        out += [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    return out


def hcl_strings(path: Path, name: str) -> list[str]:
    return re.findall(rf'^\s*{name}\s*=\s*"([^"]*)"', path.read_text(), re.M)


def tfvars() -> dict[str, str]:
    return dict(re.findall(r'^\s*([a-z_]+)\s*=\s*"([^"]*)"', (EXAMPLE / "terraform.tfvars.example").read_text(), re.M))


def variable_default(name: str) -> str | None:
    block = re.search(rf'variable "{name}" \{{(.*?)\n\}}', (EXAMPLE / "variables.tf").read_text(), re.S)
    default = block and re.search(r'^\s*default\s*=\s*"([^"]*)"', block.group(1), re.M)
    return default.group(1) if default else None


def example_outputs() -> set[str]:
    return set(re.findall(r'^output "([^"]+)"', "".join(p.read_text() for p in EXAMPLE.glob("*.tf")), re.M))


def standin_env() -> dict[str, str]:
    env = dict(os.environ)
    if "AWS_ENDPOINT_URL" not in env:
        standins = ROOT / ".local" / "standins.env"
        if standins.exists():
            for line in standins.read_text().splitlines():
                m = re.match(r"^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
                if m:
                    env[m.group(1)] = shlex.split(m.group(2))[0] if m.group(2) else ""
    # A moto account of this run's own (moto takes a 12-digit access key id as the account).
    env["AWS_ACCESS_KEY_ID"] = f"{random.randrange(10**11, 10**12)}"
    env["AWS_SECRET_ACCESS_KEY"] = "quickstart"
    env.setdefault("AWS_REGION", "eu-west-1")
    env["AWS_DEFAULT_REGION"] = env["AWS_REGION"]
    env["AWS_PAGER"] = ""
    return env


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = Path(sys.argv[1]).resolve()
    problems: list[str] = []
    counts = {"run": 0, "checked": 0, "not run": 0}
    env = standin_env()
    if "AWS_ENDPOINT_URL" not in env:
        problems.append("no moto stand-in (AWS_ENDPOINT_URL unset and no .local/standins.env): run scripts/standins.sh start")
    work = Path(tempfile.mkdtemp(prefix="powerpole-quickstart-"))
    cwd = ROOT
    aliases: dict[Path, Path] = {}  # a file the quickstart copies, standing for its source
    created: list[str] = []
    outputs = example_outputs()
    vars_ = tfvars()
    secret_names = {vars_.get("slack_secret_name") or variable_default("slack_secret_name"), vars_.get("billing_admin_secret_name") or variable_default("billing_admin_secret_name")}
    # The stand-in is this test's own: secrets of an earlier run are removed first.
    for name in sorted(n for n in secret_names if n):
        subprocess.run(["aws", "secretsmanager", "delete-secret", "--secret-id", name, "--force-delete-without-recovery"], env=env, capture_output=True)

    def note(kind: str, command: str, why: str = "") -> None:
        counts[kind] += 1
        print(f"  {kind:8} {command}{f'  ({why})' if why else ''}")

    def resolve(arg: str) -> Path:
        path = (cwd / arg).resolve()
        return aliases.get(path, path)

    def run(argv: list[str], command: str, stdout_to: Path | None = None) -> subprocess.CompletedProcess | None:
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            problems.append(f"`{command}` exited {result.returncode}: {(result.stderr or result.stdout).strip()[:400]}")
            return None
        if stdout_to:
            stdout_to.write_text(result.stdout)
        note("run", command)
        return result

    for command in commands():
        for name in re.findall(r"terraform output (?:-raw |-json )?([A-Za-z0-9_]+)", command):
            if name not in outputs:
                problems.append(f"`{command}`: `terraform output {name}` is not an output of infra/examples/complete (outputs: {', '.join(sorted(outputs))})")
        redirect = re.search(r"\s>\s*(\S+)\s*$", command)
        argv_text = command[: redirect.start()] if redirect else command
        try:
            argv = shlex.split(argv_text)
        except ValueError as err:
            problems.append(f"`{command}`: not a shell command ({err})")
            continue
        head = argv[:2]
        if argv[0] == "cd":
            cwd = (cwd / argv[1]).resolve()
            if not cwd.is_dir():
                problems.append(f"`{command}`: no directory {cwd}")
            note("checked", command, "the directory exists")
        elif argv[0] == "cp":
            src, dst = (cwd / argv[1]).resolve(), (cwd / argv[2]).resolve()
            if not src.exists():
                problems.append(f"`{command}`: {argv[1]} does not exist")
            aliases[dst] = src
            note("checked", command, f"{argv[1]} exists")
        elif head == ["make", "dist"]:
            problems += check_dist(command)
            note("checked", command, "Makefile target, scripts/dist.sh output and lambda_zip_dir agree; a release build is not run here")
        elif head == ["cargo", "build"]:
            package = argv[argv.index("-p") + 1] if "-p" in argv else None
            names = re.findall(r'^name = "([^"]+)"', "".join(p.read_text() for p in [ROOT / "Cargo.toml", *ROOT.glob("lambdas/*/Cargo.toml")]), re.M)
            if package not in names:
                problems.append(f"`{command}`: no package {package} in the workspace")
            note("checked", command, "the package exists; a release build is not run here")
        elif head == ["aws", "secretsmanager"]:
            action = argv[2]
            name = argv[argv.index("--name") + 1] if "--name" in argv else argv[argv.index("--secret-id") + 1]
            if name not in secret_names:
                problems.append(f"`{command}`: secret {name} is not one terraform.tfvars.example names ({', '.join(sorted(n for n in secret_names if n))})")
            if action == "create-secret":
                if run(argv, command):
                    created.append(name)
            elif action == "put-secret-value":
                if name not in created:
                    problems.append(f"`{command}`: {name} was never created (create-secret) before this step")
                value = work / "secret.json"
                value.write_text(json.dumps({"bot_token": "xoxb-quickstart", "signing_secret": "quickstart"}))
                argv = [f"file://{value}" if a.startswith("file://") else a for a in argv]
                run(argv, command)
            else:
                problems.append(f"`{command}`: the test does not know aws secretsmanager {action}")
        elif head == ["powerpole", "slack"]:
            argv = [str(binary)] + [re.sub(r"\$\(terraform output -raw function_url\)", "https://abc123.lambda-url.eu-west-1.on.aws/", a) for a in argv[1:]]
            result = run(argv, command)
            if result:
                manifest = json.loads(result.stdout)
                urls = json.dumps(manifest)
                for path in ["/slack/commands", "/slack/interactions", "/slack/events"]:
                    if f"https://abc123.lambda-url.eu-west-1.on.aws{path}" not in urls:
                        problems.append(f"`{command}`: the manifest has no request URL ending {path}")
        elif head == ["powerpole", "config"]:
            # As the functions read it: the file with what the module writes merged over it.
            merged = as_deployed(resolve(argv[-1]), work, problems)
            if merged:
                run([str(binary)] + argv[1:-1] + [str(merged)], command)
        elif head == ["powerpole", "db"]:
            i = argv.index("--config")
            merged = as_deployed(resolve(argv[i + 1]), work, problems)
            if not merged:
                continue
            argv[i + 1] = str(merged)
            j = argv.index("--secret-file")
            argv[j + 1] = str(work / "admin-secret.json")
            result = run([str(binary)] + argv[1:], command)
            if result:
                secret = json.loads((work / "admin-secret.json").read_text())
                if not {"username", "password"} <= set(secret) or secret["password"] not in result.stdout:
                    problems.append(f"`{command}`: the secret file and the SQL do not hold the same new password")
        elif argv[0] in ("terraform", "mysql", "rm", "eval") or head == ["powerpole", "doctor"]:
            why = {"terraform": "needs an AWS account", "mysql": "needs the database", "rm": "removes the operator's own files", "eval": "reads a deployed output", "powerpole": "needs a deployment"}[argv[0]]
            note("not run", command, why)
        else:
            problems.append(f"`{command}`: the quickstart test does not know this command; teach infra/tests/quickstart_test.py what to check")

    for p in problems:
        print(f"  quickstart: {p}")
    total = sum(counts.values())
    print(f"quickstart: {'FAILED' if problems else 'PASS'} ({total} command(s): {counts['run']} run, {counts['checked']} checked, {counts['not run']} not run here; {len(problems)} problem(s))")
    return 1 if problems else 0


# Sample values for what the module interpolates into its configuration fragments.
MODULE_SAMPLES = {
    "aws_dynamodb_table.sessions.name": "powerpole",
    "var.slack_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/slack-AbCdEf",
    "var.slack_secret_keys.signing_secret": "signing_secret",
    "var.slack_secret_keys.bot_token": "bot_token",
    "aws_iam_instance_profile.bastion.name": "powerpole-bastion",
    "var.bastion_instance_types[0]": "t3.micro",
    "var.bastion_ami_parameter": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "target.admin_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/targets/billing/admin-GhIjKl",
    "target.db_port": 3306,
    "aws_security_group.bastion[name].id": "sg-0123456789abcdef0",
    "coalesce(target.bastion_subnet_id, var.bastion_subnet_ids[0])": "subnet-0123456789abcdef0",
}


def module_fragments(target: str, problems: list[str]) -> list[str]:
    """The TOML fragments config_layers.tf writes (common, one per target), rendered with samples."""
    tf = (ROOT / "infra" / "modules" / "powerpole" / "config_layers.tf").read_text()
    common = re.search(r"config_layer_common = <<-EOT\n(.*?)\n\s*EOT", tf, re.S)
    lines = re.search(r'join\("\\n", \[\n(.*?)\n\s*\]\)', tf, re.S)
    if not common or not lines:
        problems.append("config_layers.tf: cannot find config_layer_common or the per-target lines")
        return []
    per_target = "\n".join(json.loads(l.strip().rstrip(",")) for l in lines.group(1).splitlines() if l.strip())

    def fill(text: str) -> str:
        def value(m: re.Match) -> str:
            expr = m.group(2) or m.group(3)
            if expr == "name":
                return target
            if expr not in MODULE_SAMPLES:
                problems.append(f"config_layers.tf interpolates {expr}: add a sample to quickstart_test.py")
                return '""'
            return json.dumps(MODULE_SAMPLES[expr])
        return re.sub(r"\$\{(jsonencode\((.*?)\)|([^}]*))\}", value, text)

    return [fill(common.group(1)), fill(per_target)]


def merge(into: dict, over: dict) -> dict:
    for k, v in over.items():
        into[k] = merge(into.get(k, {}), v) if isinstance(v, dict) and isinstance(into.get(k), dict) else v
    return into


def toml_text(table: dict, prefix: str = "") -> str:
    """A TOML document of strings, numbers, booleans, string lists and (sub)tables."""
    scalars = [f"{k} = {json.dumps(v)}" for k, v in table.items() if not isinstance(v, dict)]
    out = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for k, v in table.items():
        if isinstance(v, dict):
            out.append(toml_text(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(out) + "\n"


def as_deployed(path: Path, work: Path, problems: list[str]) -> Path | None:
    """The operator's file as the functions read it: the module's fragments and [deployment] id
    (terraform.tfvars.example's deployment_id) merged over it, as config.tf and
    config_layers.tf write them."""
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        problems.append(f"{path}: {err}")
        return None
    for target in config.get("targets", {}):
        for fragment in module_fragments(target, problems):
            merge(config, tomllib.loads(fragment))
    deployment = tfvars().get("deployment_id")
    if not deployment:
        problems.append("terraform.tfvars.example sets no deployment_id (the module requires one)")
    merge(config, {"deployment": {"id": deployment or ""}})
    out = work / f"as-deployed-{path.stem}.toml"
    out.write_text(toml_text(config))
    return out


def check_dist(command: str) -> list[str]:
    problems = []
    makefile = (ROOT / "Makefile").read_text()
    if not re.search(r"^dist:\s*\n\t.*scripts/dist\.sh", makefile, re.M):
        problems.append(f"`{command}`: the Makefile has no dist target running scripts/dist.sh")
    dist = (ROOT / "scripts" / "dist.sh").read_text()
    out = re.search(r'^OUT="\$ROOT/([^"]+)"', dist, re.M)
    functions = re.search(r"^FUNCTIONS=\(([^)]*)\)", dist, re.M)
    if not out or not functions:
        return problems + ["scripts/dist.sh: no OUT= or FUNCTIONS=( ) to read"]
    out_dir, names = (ROOT / out.group(1)).resolve(), functions.group(1).split()
    if len(names) != 4:
        problems.append(f"scripts/dist.sh builds {len(names)} zips ({' '.join(names)}), the module needs four")
    wanted = {(out_dir / arch) for arch in ("arm64", "x86_64")}
    for where, value in [("variables.tf default", variable_default("lambda_zip_dir")), ("terraform.tfvars.example", tfvars().get("lambda_zip_dir"))]:
        if value is not None and (EXAMPLE / value).resolve() not in wanted:
            problems.append(f"lambda_zip_dir in {where} is {value}, but `make dist` writes {out.group(1)}/<arm64|x86_64>")
    main_tf = (EXAMPLE / "main.tf").read_text()
    passed = re.findall(r'\$\{var\.lambda_zip_dir\}/([a-z-]+)/bootstrap\.zip', main_tf)
    if sorted(passed) != sorted(names):
        problems.append(f"the example passes the zips {sorted(passed)}, `make dist` writes {sorted(names)}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
