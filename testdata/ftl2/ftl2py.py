#!/usr/bin/env python3
"""Drive the real Python ftl2 state code (vendored, unmodified, in upstream/).

Used by ftlstate's tests (export/ftl2_python_test.go) and to write the
fixtures of this directory that the README lists as written here. It loads
upstream's package the way the fixtures of ../../shared/ftl2py were made:
an empty package object called ftl2 pointed at upstream/ftl2, so that
ftl2.state, ftl2.inventory and ftl2.types are upstream's own modules and
nothing else of ftl2 (which needs asyncssh, httpx, ...) is imported.

Commands (JSON on stdout):
  merge FILE         upstream's merge_state_into_inventory(State(FILE), Inventory())
  load-list FILE     upstream's load_inventory_json of a dynamic inventory --list
                     document (what ftl2 does with an inventory script's output)
  state FILE         what upstream's State(FILE) holds: hosts, get_host of each,
                     resources(), and resources(provider=P) for each provider
  scenario NAME DIR  run a scenario of State calls, writing DIR/NAME.ftl2-state.json
  mutate FILE        change FILE with upstream's State: add_host, update_resource
                     of every resource, add_resource, remove_host of "gone"
  repr FLOAT...      repr() of each float (for the writer's float format)

An inventory is printed as {"groups": {group: [host, ...]}, "hosts": {host:
{ansible_host, ansible_port, ansible_user, ansible_connection, vars}}}, with
only the groups that hold hosts (load_inventory_json also makes an empty
"all" from the "children" list).
"""

import json
import math
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM = os.path.join(HERE, "upstream", "ftl2")

try:
    import yaml  # noqa: F401  (ftl2.inventory imports it; only YAML files need it)
except ImportError:
    sys.modules["yaml"] = types.ModuleType("yaml")

pkg = types.ModuleType("ftl2")
pkg.__path__ = [UPSTREAM]
sys.modules["ftl2"] = pkg

from ftl2.inventory import Inventory, load_inventory_json  # noqa: E402
from ftl2.state import State, merge_state_into_inventory, save_state, ExecutionState, HostState  # noqa: E402


def inventory_json(inv):
    groups = {}
    hosts = {}
    for g in inv.list_groups():
        names = sorted(h.name for h in g.list_hosts())
        if not names:
            continue
        groups[g.name] = names
        for h in g.list_hosts():
            hosts[h.name] = {
                "ansible_host": h.ansible_host,
                "ansible_port": h.ansible_port,
                "ansible_user": h.ansible_user,
                "ansible_connection": h.ansible_connection,
                "vars": h.vars,
            }
    return {"groups": groups, "hosts": hosts}


def cmd_merge(path):
    inv = Inventory()
    merge_state_into_inventory(State(path), inv)
    return inventory_json(inv)


def cmd_load_list(path):
    with open(path) as f:
        data = json.load(f)
    return inventory_json(load_inventory_json(data, require_hosts=False))


def cmd_state(path):
    st = State(path)
    res = st.resources()
    providers = sorted({r.get("provider") for r in res.values() if isinstance(r.get("provider"), str)})
    return {
        "hosts": st.hosts(),
        "host": {n: st.get_host(n) for n in st.hosts()},
        "resources": res,
        "by_provider": {p: sorted(st.resources(provider=p)) for p in providers},
    }


def pause():
    time.sleep(0.003)  # so that timestamps differ, as upstream's fixtures were made


def scenario(name, out_dir):
    path = os.path.join(out_dir, name + ".ftl2-state.json")
    if os.path.exists(path):
        os.remove(path)
    if name == "d_hybrid":
        # upstream reading a documented state.json and changing it: the
        # hybrid the fixtures README describes.
        with open(os.path.join(HERE, "..", "state.json")) as f:
            src = f.read()
        with open(path, "w") as f:
            f.write(src)
        st = State(path)
        pause()
        st.add_host("web02", ansible_host="192.168.1.11", ansible_user="deploy", groups=["webservers", "canary"], http_port=8080)
        pause()
        st.update_resource("linode:12345678", {"status": "running", "ipv4": ["192.168.1.10", "192.168.1.12"]})
        pause()
        st.add_resource("web02", {"provider": "linode", "id": 23456789, "region": "us-east"})
    elif name == "e_quirks":
        # Values upstream's State accepts without a word, which a reader
        # must take as they are.
        st = State(path)
        pause()
        st.add_host("ungrouped-by-automation", ansible_host="192.0.2.30", groups=["ungrouped"])
        pause()
        st.add_host("twice", ansible_host="192.0.2.31", groups=["web", "web", "db"])
        pause()
        st.add_host("caf\u00e9-01", ansible_host="192.0.2.32", ansible_user="r\u00e9mi", groups=["\u00e9quipe"], note="\U0001f680")
        pause()
        st.add_host("stamped", ansible_host="192.0.2.33", added_at="yesterday", ansible_connection="local", ansible_password="s3cret")
        pause()
        st.add_host("odd-port", ansible_host="192.0.2.34", ansible_port="2222", groups=["web"])
        pause()
        st.add_host("no-address", groups=[])
        pause()
        st.add_host("exact-second", ansible_host="192.0.2.35", added_at="2026-01-01T00:00:00+00:00", floats=[-0.0, 2.0, 1e16, 1e-05, 0.1, 123456789.125])
        pause()
        st.add_resource("no-provider", {"id": "abc", "size": 3})
        pause()
        st.add_resource("numeric-zero-id", {"provider": "vultr", "id": 0})
        pause()
        st.add_resource("big-id", {"provider": "custom", "id": 18446744073709551616})
        pause()
        st.add_resource("float-id", {"provider": "custom", "id": 1.5})
        pause()
        st.add_resource("data-overrides", {"provider": "dns", "created_at": "by hand", "id": "z1"})
        pause()
        st.add_resource("updated-twice", {"provider": "aws", "id": "i-1"})
        pause()
        st.update_resource("updated-twice", {"state": "pending"})
        pause()
        st.update_resource("updated-twice", {"state": "running", "public_ip": "198.51.100.9"})
        pause()
        st.add_resource("hyphen", {"provider": "-", "id": "h"})
    elif name == "bad_nan":
        st = State(path)
        st.add_host("web01", ansible_host="192.0.2.10", load=float("nan"))
    elif name == "bad_infinity":
        st = State(path)
        st.add_resource("r1", {"provider": "aws", "limits": {"max": float("inf"), "min": float("-inf")}})
    elif name == "bad_bigint":
        st = State(path)
        st.add_host("web01", ansible_host="192.0.2.10", counter=2**64)
    elif name == "bad_execution":
        # What 'ftl2 run --state-file' writes: upstream's save_state.
        path = os.path.join(out_dir, name + ".json")
        es = ExecutionState(module="ping", args={}, inventory_file="inventory.yml", timestamp="2026-12-01T18:34:26+00:00")
        es.hosts["web01"] = HostState(host_name="web01", success=True, changed=False, timestamp="2026-12-01T18:34:26+00:00")
        es.hosts["web02"] = HostState(host_name="web02", success=False, changed=False, timestamp="2026-12-01T18:34:26+00:00", error="unreachable")
        save_state(es, path)
    else:
        raise SystemExit("unknown scenario " + name)
    return {"written": os.path.basename(path)}


def cmd_mutate(path):
    st = State(path)
    st.add_host("added-by-python", ansible_host="198.51.100.7", ansible_user="py", groups=["python", "webservers"], role="new")
    for name in list(st.resources()):
        st.update_resource(name, {"checked": True})
    st.add_resource("added-by-python", {"provider": "linode", "id": 987654321})
    st.remove_host("gone")
    return {"hosts": st.hosts(), "resources": sorted(st.resources())}


def main(argv):
    cmd = argv[1]
    if cmd == "merge":
        out = cmd_merge(argv[2])
    elif cmd == "load-list":
        out = cmd_load_list(argv[2])
    elif cmd == "state":
        out = cmd_state(argv[2])
    elif cmd == "scenario":
        out = scenario(argv[2], argv[3])
    elif cmd == "mutate":
        out = cmd_mutate(argv[2])
    elif cmd == "repr":
        out = [repr(float(a)) for a in argv[2:]]
    else:
        raise SystemExit("unknown command " + cmd)
    # allow_nan: a state upstream reads may hold NaN, and this shows it.
    json.dump(out, sys.stdout, indent=1, sort_keys=True, allow_nan=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
