#!/usr/bin/python3
"""examples/valohai.yaml, run as Valohai would run it: every step that calls vhprep gets
its parameters' defaults the way Valohai passes them ("--name=value"; `multiple: repeat`
repeats the flag; an optional parameter without a default is left out) and runs on a
small generated tree in place of the NFS mount. The run must succeed and bind its
outputs to the dataset the parameters name.

usage: test_valohai_yaml.py VHPREP SOURCE_DIR"""
import json
import os
import subprocess
import sys
import tempfile

import yaml
from PIL import Image

vhprep, source = sys.argv[1], sys.argv[2]
failed = 0


def check(ok, what):
    global failed
    print(("ok   " if ok else "FAIL ") + what)
    failed += not ok


def valohai_args(params):
    """The arguments Valohai's {parameters} expands to for the defaults."""
    args = []
    for p in params:
        if "default" not in p or p["default"] is None:
            continue
        if p.get("type") == "flag":  # Valohai passes --name when true, nothing when false
            if p["default"]:
                args.append(f"--{p['name']}")
            continue
        values = p["default"] if isinstance(p["default"], list) else [p["default"]]
        if p.get("multiple") == "separate":
            values = [p.get("multiple-separator", ",").join(str(v) for v in values)]
        elif len(values) > 1 and p.get("multiple") != "repeat":
            raise SystemExit(f"parameter {p['name']}: a list default needs `multiple`")
        for v in values:
            args.append(f"--{p['name']}={v}")
    return args


with open(os.path.join(source, "examples/valohai.yaml")) as f:
    doc = yaml.safe_load(f)
steps = [e["step"] for e in doc if "step" in e]
check(len(steps) >= 2, "the file has its steps")

with tempfile.TemporaryDirectory() as tmp:
    tree = os.path.join(tmp, "raw")
    for sub in ("a", "b/c"):
        os.makedirs(os.path.join(tree, sub))
        for i in range(4):
            Image.new("RGB", (64 + i, 48), (40 * i, 90, 200)).save(
                os.path.join(tree, sub, f"img{i}.jpg"))
    with open(os.path.join(tree, "README.txt"), "w") as f:
        f.write("not an image\n")

    for step in steps:
        cmds = [c for c in step.get("command", []) if "vhprep {parameters}" in c]
        for c in step.get("command", []):
            if "install-deps.sh" in c:
                check("--build-only" in c, f"{step['name']}: installs only what the build needs")
        if not cmds:
            continue
        mount = step["mounts"][0]["destination"]
        check(cmds[0].rstrip().endswith(mount), f"{step['name']}: vhprep reads the mount")
        out = os.path.join(tmp, step["name"])
        args = valohai_args(step.get("parameters", []))
        env = dict(os.environ, VH_OUTPUTS_DIR=out, VH_DIST_MEMBER_INDEX="1",
                   VH_DIST_MEMBER_COUNT="4")
        r = subprocess.run([vhprep, "--metrics-interval", "0", *args, tree], env=env,
                           capture_output=True, text=True)
        check(r.returncode == 0, f"{step['name']}: vhprep {' '.join(args)} exits 0")
        if r.returncode:
            print(f"     exit {r.returncode}: {r.stderr.strip()[-500:]}")
        meta = os.path.join(out, "valohai.metadata.jsonl")
        lines = [json.loads(l) for l in open(meta)] if os.path.exists(meta) else []
        want = next((a.split("=", 1)[1] for a in args if a.startswith("--dataset=")), None)
        if want and "{shard}" in want:
            want = want.replace("{shard}", "1of4")
        versions = {d.get("uri") if isinstance(d, dict) else d for l in lines
                    for d in l.get("metadata", {}).get("valohai.dataset-versions", [])}
        check(len(lines) > 0 and (want is None or versions == {want}),
              f"{step['name']}: {len(lines)} records bound to {sorted(map(str, versions))}")

sys.exit(1 if failed else 0)
