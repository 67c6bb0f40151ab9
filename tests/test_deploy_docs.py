"""The deployment guide's configuration files work as the guide says (docs/deployment.md).

nginx checks its own site file (`nginx -t`, skipped without nginx except under CI), systemd
its unit where `systemd-analyze verify` works, gunicorn both command lines; the rest is
read here: what each file must say for event streams and graceful restarts.
"""

import configparser
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "deployment.md"
NGINX_SITE = ROOT / "docs" / "deploy" / "nginx.conf"
UNIT = ROOT / "docs" / "deploy" / "lms.service"
ENV_FILE = ROOT / "docs" / "deploy" / "lms.env.example"
PROCFILE = ROOT / "Procfile"

CERT_PLACEHOLDER = "/etc/letsencrypt/live/lms.example.com/fullchain.pem"
KEY_PLACEHOLDER = "/etc/letsencrypt/live/lms.example.com/privkey.pem"
VENV_GUNICORN = "/srv/lms/.venv/bin/gunicorn"
HOUR = 3600


# -- reading the files ----------------------------------------------------------------------

NGINX_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{};]|[^\s{};"\']+')


def parse_nginx(text: str) -> list[tuple[str, list[str], list | None]]:
    """nginx configuration as (name, arguments, block or None) tuples, nested."""
    text = re.sub(r"(?m)(^|\s)#.*$", r"\1", text)
    tokens = NGINX_TOKEN.findall(text)

    def block(pos: int) -> tuple[list, int]:
        items, words = [], []
        while pos < len(tokens):
            token = tokens[pos]
            pos += 1
            if token == ";":
                items.append((words[0], words[1:], None))
                words = []
            elif token == "{":
                children, pos = block(pos)
                items.append((words[0], words[1:], children))
                words = []
            elif token == "}":
                assert not words, f"directive without ';' before '}}': {words}"
                return items, pos
            else:
                words.append(token[1:-1] if token[0] in "\"'" else token)
        assert not words, f"directive without ';' at the end: {words}"
        return items, pos

    items, pos = block(0)
    assert pos == len(tokens), "unbalanced '}'"
    return items


def directives(block: list, name: str) -> list[list[str]]:
    return [args for key, args, _ in block if key == name]


def only(block: list, name: str) -> list[str]:
    found = directives(block, name)
    assert len(found) == 1, f"expected one {name!r}, found {found}"
    return found[0]


def blocks(block: list, name: str) -> list[tuple[list[str], list]]:
    return [(args, children) for key, args, children in block if key == name and children is not None]


def nginx_seconds(value: str) -> float:
    units = {"ms": 0.001, "": 1, "s": 1, "m": 60, "h": HOUR, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}
    pattern = r"(\d+)(ms|s|m|h|d|w|M|y)?"
    assert re.fullmatch(f"(?:{pattern})+", value), f"not an nginx time: {value!r}"
    parts = re.findall(pattern, value)
    return sum(int(number) * units[unit] for number, unit in parts)


def systemd_seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1, "ms": 0.001, "msec": 0.001, "min": 60,
             "m": 60, "minute": 60, "minutes": 60, "h": HOUR, "hr": HOUR, "hour": HOUR, "hours": HOUR}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value.strip())
    assert parts and re.fullmatch(r"(\s*\d+(\.\d+)?\s*[a-z]*)+\s*", value), f"not a systemd time: {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def read_unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(UNIT.read_text())
    return unit


def exec_start_args() -> list[str]:
    # systemd joins a line ending in a backslash with the next one.
    return shlex.split(re.sub(r"\\\s*\n\s*", " ", read_unit()["Service"]["ExecStart"]))


def read_procfile() -> dict[str, str]:
    processes = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, colon, command = line.partition(":")
            assert colon, f"not a Procfile line: {line!r}"
            assert name.strip() not in processes, f"{name} twice in the Procfile"
            processes[name.strip()] = command.strip()
    return processes


def procfile_gunicorn_args() -> list[str]:
    commands = [part.strip() for part in read_procfile()["web"].split("&&")]
    return shlex.split(commands[-1])


def option(args: list[str], *names: str) -> str:
    """The value of a command-line option given as `--name value` or `--name=value`."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name:
                return args[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"{names[0]} is not set in {shlex.join(args)}")


def worker_graceful_shutdown() -> float:
    from lms.workers import UvicornWorker

    return UvicornWorker.CONFIG_KWARGS["timeout_graceful_shutdown"]


def env_file_values() -> dict[str, str]:
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        assert match, f"not a NAME=value line: {line!r}"
        name, value = match.groups()
        if value.startswith("'"):
            assert value.endswith("'") and len(value) > 1, f"unclosed quote: {line!r}"
            value = value[1:-1]
        else:
            # systemd and sh read unquoted backslashes, quotes and spaces differently.
            assert not re.search(r"[\\\"'\s$`]", value), f"quote this value in single quotes: {line!r}"
        values[name] = value
    return values


def example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"(?m)^([A-Z][A-Z0-9_]*)=", text))


# -- nginx ----------------------------------------------------------------------------------


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    # /usr/sbin is not on every user's PATH.
    return next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def write_self_signed_certificate(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lms.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("lms.example.com")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def test_nginx_site_passes_nginx_t(tmp_path):
    nginx = nginx_binary()
    if nginx is None:
        message = "nginx is not installed (apt-get install nginx), so `nginx -t` did not run"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must run it (.ci/run installs nginx)")
        pytest.skip(message)

    site = NGINX_SITE.read_text()
    assert CERT_PLACEHOLDER in site and KEY_PLACEHOLDER in site
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed_certificate(cert, key)
    site = site.replace(CERT_PLACEHOLDER, str(cert)).replace(KEY_PLACEHOLDER, str(key))
    (tmp_path / "lms.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path / 'nginx.pid'};\n"
        f"error_log {tmp_path / 'error.log'};\n"
        "events {}\n"
        "http {\n"
        f"    access_log {tmp_path / 'access.log'};\n"
        f"{temp_paths}\n"
        f"    include {tmp_path / 'lms.conf'};\n"
        "}\n"
    )
    command = [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(main), "-e", str(tmp_path / "error.log")]
    if os.geteuid() == 0:
        command += ["-g", "user root;"]  # not nginx's default user, which a container may lack
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr, result.stderr


def tls_server() -> list:
    servers = [children for _, children in blocks(parse_nginx(NGINX_SITE.read_text()), "server")]
    found = [s for s in servers if any("ssl" in args for args in directives(s, "listen"))]
    assert len(found) == 1, "expected one server that listens with ssl"
    return found[0]


def location(server: list, path: str) -> list:
    found = [children for args, children in blocks(server, "location") if args == [path]]
    assert len(found) == 1, f"expected one `location {path}`"
    return found[0]


def proxy_headers(block: list) -> dict[str, str]:
    return {args[0].lower(): args[1] for args in directives(block, "proxy_set_header")}


def test_nginx_serves_tls_with_http2():
    server = tls_server()
    listens = directives(server, "listen")
    assert any(args[0].endswith("443") for args in listens)
    http2_on = directives(server, "http2") == [["on"]]
    assert http2_on or all("http2" in args for args in listens), "HTTP/2 is off"
    assert only(server, "ssl_certificate") == [CERT_PLACEHOLDER]
    assert only(server, "ssl_certificate_key") == [KEY_PLACEHOLDER]


def test_nginx_redirects_http_to_https():
    servers = [children for _, children in blocks(parse_nginx(NGINX_SITE.read_text()), "server")]
    plain = [s for s in servers if any(args[0] in ("80", "[::]:80") for args in directives(s, "listen"))]
    assert len(plain) == 1
    assert only(location(plain[0], "/"), "return") == ["301", "https://$host$request_uri"]


def test_nginx_events_location_streams_unbuffered():
    events = location(tls_server(), "/events/")
    assert only(events, "proxy_pass") == ["http://lms_app"]
    assert only(events, "proxy_buffering") == ["off"]
    assert only(events, "proxy_cache") == ["off"]
    assert nginx_seconds(only(events, "proxy_read_timeout")[0]) >= HOUR
    assert nginx_seconds(only(events, "proxy_send_timeout")[0]) >= HOUR
    assert only(events, "proxy_http_version") == ["1.1"]
    assert proxy_headers(events)["connection"] == ""


def nginx_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def test_nginx_body_limits_match_the_app():
    from django.conf import settings
    from django.urls import reverse

    server = tls_server()
    assert nginx_bytes(only(server, "client_max_body_size")[0]) == settings.REQUEST_MAX_BYTES
    [(args, upload)] = [(a, c) for a, c in blocks(server, "location") if directives(c, "client_max_body_size")]
    assert args[0] == "~" and re.search(args[1], reverse("livestream:recording_attach", args=[7]))
    assert nginx_bytes(only(upload, "client_max_body_size")[0]) == settings.UPLOAD_MAX_BYTES
    assert only(upload, "proxy_request_buffering") == ["off"]


def test_nginx_times_out_stalled_clients_and_closes_idle_upstreams_first():
    from lms.workers import UvicornWorker

    server = tls_server()
    assert nginx_seconds(only(server, "client_header_timeout")[0]) <= 30
    assert nginx_seconds(only(server, "client_body_timeout")[0]) <= 60
    assert nginx_seconds(only(server, "send_timeout")[0]) <= 60
    [(_, upstream)] = blocks(parse_nginx(NGINX_SITE.read_text()), "upstream")
    idle = nginx_seconds(only(upstream, "keepalive_timeout")[0])
    assert idle < UvicornWorker.CONFIG_KWARGS["timeout_keep_alive"]


def test_worker_caps_headers_whatever_http_library_is_installed():
    from lms.workers import UvicornWorker

    assert UvicornWorker.CONFIG_KWARGS["http"] == "h11"  # httptools has no such cap
    assert 8 * 1024 <= UvicornWorker.CONFIG_KWARGS["h11_max_incomplete_event_size"] <= 64 * 1024


def test_nginx_every_proxied_location_forwards_client_and_scheme():
    # A location with any proxy_set_header inherits none from outside, so each one needs all.
    locations = blocks(tls_server(), "location")
    proxied = [(args, children) for args, children in locations if directives(children, "proxy_pass")]
    assert proxied
    for args, children in proxied:
        headers = proxy_headers(children)
        assert headers.get("host") == "$host", args
        assert headers.get("x-forwarded-for") == "$proxy_add_x_forwarded_for", args
        assert headers.get("x-forwarded-proto") == "$scheme", args
        # Upstream keep-alive needs HTTP/1.1 and no "Connection: close".
        assert only(children, "proxy_http_version") == ["1.1"], args
        assert headers.get("connection") == "", args


def test_nginx_upstream_is_where_the_unit_binds_gunicorn():
    [(args, upstream)] = blocks(parse_nginx(NGINX_SITE.read_text()), "upstream")
    assert args == ["lms_app"]
    assert only(upstream, "server")[0] == option(exec_start_args(), "--bind", "-b")


def test_nginx_time_parser():
    assert nginx_seconds("1h") == nginx_seconds("60m") == nginx_seconds("3600") == HOUR
    assert nginx_seconds("1h30m") == 5400
    with pytest.raises(AssertionError):
        nginx_seconds("1 hour")


# -- systemd --------------------------------------------------------------------------------


def test_systemd_unit_has_required_settings():
    unit = read_unit()
    assert unit["Unit"]["Description"].strip()
    assert "network.target" in unit["Unit"]["After"].split()
    service = unit["Service"]
    command = shlex.join(exec_start_args())
    assert "gunicorn lms.asgi:application" in command
    assert "lms.workers.UvicornWorker" in command
    assert exec_start_args()[0] == VENV_GUNICORN
    assert service["EnvironmentFile"].startswith("/")
    assert service["User"] and service["User"] != "root"
    assert service["Restart"] == "on-failure"
    assert service["KillMode"] == "mixed"
    graceful = float(option(exec_start_args(), "--graceful-timeout"))
    assert systemd_seconds(service["TimeoutStopSec"]) > graceful
    assert graceful > worker_graceful_shutdown()
    assert int(service["LimitNOFILE"]) >= 10000
    assert service["NoNewPrivileges"] == "true"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "true"
    assert service["ReadWritePaths"] == env_file_values()["MEDIA_ROOT"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def systemd_verify(tool: str, unit_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool, "verify", "--man=no", str(unit_path)], capture_output=True, text=True, timeout=60
    )


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("no systemd-analyze here; test_systemd_unit_has_required_settings read the unit")
    # A unit that is surely fine first: if that fails, the tool cannot work here (a container
    # without systemd's directories, say), which says nothing about ours.
    probe = tmp_path / "probe" / "probe.service"
    probe.parent.mkdir()
    probe.write_text(
        "[Unit]\nDescription=probe\nAfter=network.target\n[Service]\nExecStart=/bin/true\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    result = systemd_verify(tool, probe)
    if result.returncode != 0 or result.stdout.strip() or result.stderr.strip():
        pytest.skip(f"systemd-analyze verify does not work here: {result.stderr.strip()[:300]}")

    # verify wants ExecStart's program to exist: stand one in for the venv's gunicorn.
    gunicorn = tmp_path / "bin" / "gunicorn"
    gunicorn.parent.mkdir()
    gunicorn.write_text("#!/bin/sh\nexit 0\n")
    gunicorn.chmod(0o755)
    text = UNIT.read_text()
    assert VENV_GUNICORN in text
    unit = tmp_path / "lms.service"
    unit.write_text(text.replace(VENV_GUNICORN, str(gunicorn)))
    result = systemd_verify(tool, unit)
    # verify exits 0 after many complaints (an unknown key, a bad value): any line counts.
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and not complaints, "\n".join(complaints)


def test_systemd_time_parser():
    assert systemd_seconds("20") == systemd_seconds("20s") == 20
    assert systemd_seconds("1min 30s") == 90
    with pytest.raises(AssertionError):
        systemd_seconds("twenty")


# -- gunicorn: the Procfile and the unit ----------------------------------------------------


def test_procfile_web_collects_static_then_serves_asgi():
    commands = [part.strip() for part in read_procfile()["web"].split("&&")]
    assert len(commands) == 2
    assert shlex.split(commands[0])[:3] == ["python", "manage.py", "collectstatic"]
    assert "--noinput" in shlex.split(commands[0])
    args = procfile_gunicorn_args()
    assert args[:2] == ["gunicorn", "lms.asgi:application"]
    assert option(args, "-k", "--worker-class") == "lms.workers.UvicornWorker"
    assert option(args, "--bind", "-b").endswith(":${PORT:-8000}")


def test_procfile_web_bounds_graceful_shutdown():
    graceful = float(option(procfile_gunicorn_args(), "--graceful-timeout"))
    # Each worker closes its streams first; gunicorn's limit must leave it the time to.
    assert graceful > worker_graceful_shutdown()


def test_procfile_release_migrates():
    processes = read_procfile()
    assert set(processes) == {"web", "release"}
    assert shlex.split(processes["release"]) == ["python", "manage.py", "migrate", "--noinput"]


def expand_defaults(arg: str) -> str:
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1)) or m.group(2), arg)


@pytest.mark.parametrize("source", ["Procfile", "lms.service"])
def test_gunicorn_accepts_the_command_line(source):
    args = procfile_gunicorn_args() if source == "Procfile" else exec_start_args()
    args = [expand_defaults(arg) for arg in args[1:]]
    from gunicorn.util import load_class
    from uvicorn_worker import UvicornWorker

    assert issubclass(load_class(option(args, "-k", "--worker-class")), UvicornWorker)
    env = {**os.environ, "DEBUG": "", "SECRET_KEY": os.environ.get("SECRET_KEY") or "x" * 50}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the settings file and the guide --------------------------------------------------------


def test_env_file_sets_only_settings_the_app_reads():
    values = env_file_values()
    assert set(values) <= example_names(), set(values) - example_names()
    for name in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASE_URL", "REDIS_URL"):
        assert name in values
    assert values["DEBUG"] == ""


def test_env_file_reads_the_same_in_sh(tmp_path):
    values = env_file_values()
    script = (
        'file=$1; shift; set -a; . "$file"; set +a; '
        'for name in "$@"; do printf "%s=%s\\0" "$name" "$(printenv "$name")"; done'
    )
    result = subprocess.run(
        ["sh", "-c", script, "sh", str(ENV_FILE), *values], capture_output=True, text=True, timeout=30,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert result.returncode == 0, result.stderr
    read = dict(item.split("=", 1) for item in result.stdout.split("\0") if item)
    assert read == values


def test_guide_explains_every_setting():
    guide = GUIDE.read_text()
    missing = sorted(name for name in example_names() if f"`{name}`" not in guide)
    assert not missing


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_guide_links_resolve():
    guide = GUIDE.read_text()
    prose = re.sub(r"(?ms)^```.*?^```", "", guide)
    anchors = {github_anchor(h) for h in re.findall(r"(?m)^#+ (.+)$", prose)}
    links = re.findall(r"\]\(([^)\s]+)\)", guide)
    assert links
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        path, _, anchor = link.partition("#")
        if path:
            assert (GUIDE.parent / path).exists(), link
        else:
            assert anchor in anchors, link
    for name in ("nginx.conf", "lms.service", "lms.env.example"):
        assert f"](deploy/{name})" in guide
    assert "](docs/deployment.md)" in (ROOT / "README.md").read_text()


def test_guide_paths_match_the_unit():
    guide = GUIDE.read_text()
    service = read_unit()["Service"]
    for path in (service["EnvironmentFile"], service["ReadWritePaths"], service["WorkingDirectory"]):
        assert path in guide, path
    assert "127.0.0.1:8000" in guide
