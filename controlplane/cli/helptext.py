"""caractrl's help texts: written by scripts/caractrl-help from the commands themselves, do not edit."""

from typing import Final

HELP: Final[dict[str, str]] = {
    "": """\
Usage: caractrl [OPTIONS] COMMAND [ARGS]...

  caractrl drives a Caravanserai control plane: Nodes, Projects, cordon and
  drain.

Options:
  --server URL   Control plane URL (else $CARA_SERVER, else the config file,
                 else MagicDNS name cara-server).
  --socket PATH  tailscaled LocalAPI socket for MagicDNS (else $TS_SOCKET).
  -v, --verbose  Say which server is used and log every HTTP request on stderr.
  -h, --help     Show this message and exit.

Commands:
  annotate      Set (key=value) or remove (key-) annotations of a Node or...
  apply         Create or update the Nodes and Projects in manifests.
  completion    Print the completion script of a shell: `source <(caractrl...
  cordon        Mark a Node unschedulable; its Projects keep running.
  delete        Delete Nodes or Projects, by NAME, TYPE/NAME or the...
  describe      Show every field of Nodes or Projects, by NAME or TYPE/NAME.
  drain         Cordon a Node and move its Projects away; `uncordon` ends it.
  get           List Nodes, Projects or Events, or show Nodes or Projects...
  label         Set (key=value) or remove (key-) labels of a Node or Project.
  logs          Print a service's stdout and stderr, as its Node's agent...
  mesh          Show which paths between Nodes are not Direct, and why (a...
  port-forward  Forward 127.0.0.1:LOCAL to port REMOTE of a service's...
  uncordon      Make a Node schedulable again (this also ends Draining).
  version       Print the client and server versions, and the server's...""",
    "annotate": """\
Usage: caractrl annotate [OPTIONS] RESOURCE WORDS...

  Set (key=value) or remove (key-) annotations of a Node or Project.

Options:
  --overwrite  Replace a key's existing value.
  -h, --help   Show this message and exit.""",
    "apply": """\
Usage: caractrl apply [OPTIONS]

  Create or update the Nodes and Projects in manifests.

  Every document of every file is validated before anything is sent, so one bad
  document means nothing is written.

Options:
  -f, --filename TEXT             Manifest file (YAML, multi-document, or JSON)
                                  or folder of them; - for stdin. May be
                                  repeated.  [required]
  -R, --recursive                 With -f DIR: also read the folders below it.
  --dry-run [none|client|server]  client: validate here and send nothing;
                                  server: the server validates and stores
                                  nothing.
  -h, --help                      Show this message and exit.""",
    "completion": """\
Usage: caractrl completion [OPTIONS] {bash|zsh|fish}

  Print the completion script of a shell: `source <(caractrl completion bash)`.

Options:
  -h, --help  Show this message and exit.""",
    "cordon": """\
Usage: caractrl cordon [OPTIONS] NODE

  Mark a Node unschedulable; its Projects keep running.

Options:
  -h, --help  Show this message and exit.""",
    "delete": """\
Usage: caractrl delete [OPTIONS] [RESOURCE] [NAMES]...

  Delete Nodes or Projects, by NAME, TYPE/NAME or the manifests that made them.

Options:
  -f, --filename TEXT  Delete the objects of these manifests.
  -R, --recursive      With -f DIR: also read the folders below it.
  --force              Projects only: delete at once, without waiting for the
                       node to stop them.
  -h, --help           Show this message and exit.""",
    "describe": """\
Usage: caractrl describe [OPTIONS] RESOURCE [NAMES]...

  Show every field of Nodes or Projects, by NAME or TYPE/NAME.

Options:
  -h, --help  Show this message and exit.""",
    "drain": """\
Usage: caractrl drain [OPTIONS] NODE

  Cordon a Node and move its Projects away; `uncordon` ends it.

Options:
  --timeout TEXT  How long to wait for the Projects to leave.  [default: 5m]
  --no-wait       Return once the Node is Draining, without waiting.
  -h, --help      Show this message and exit.""",
    "get": """\
Usage: caractrl get [OPTIONS] RESOURCE [NAMES]...

  List Nodes, Projects or Events, or show Nodes or Projects by NAME (several
  names, or TYPE/NAME forms).

Options:
  -o, --output FORMAT        wide | json | yaml | name | jsonpath=TEMPLATE |
                             custom-columns=HEADER:PATH[,...]
  -l, --selector TEXT        Label selector: k=v, k!=v, k in (a,b), k notin (a),
                             k, !k.
  -w, --watch                After listing, print changes as they happen (Ctrl-C
                             ends).
  --sort-by JSONPATH         Sort by the value of a JSONPath, e.g.
                             .metadata.name.
  --no-headers               Do not print the header line of tables.
  --show-labels              Add a LABELS column.
  --request-timeout SECONDS  With -w: stop watching after this many seconds.
  --for KIND/NAME            events: only those about node/NAME or project/NAME.
  -h, --help                 Show this message and exit.""",
    "label": """\
Usage: caractrl label [OPTIONS] RESOURCE WORDS...

  Set (key=value) or remove (key-) labels of a Node or Project.

Options:
  --overwrite  Replace a key's existing value.
  -h, --help   Show this message and exit.""",
    "logs": """\
Usage: caractrl logs [OPTIONS] PROJECT/SERVICE

  Print a service's stdout and stderr, as its Node's agent streams them.

Options:
  -f, --follow           Keep streaming new output.
  --tail INTEGER RANGE   Only the last N lines (default: all).  [x>=0]
  --timestamps           Prefix each line with its time.
  --node NAME|HOST:PORT  Ask this Node's agent (skips the Project lookup).
  -h, --help             Show this message and exit.""",
    "mesh": """\
Usage: caractrl mesh [OPTIONS]

  Show which paths between Nodes are not Direct, and why (a summary line, then
  the list; --matrix: the grid).

Options:
  -o, --output [json|wide]     json: {"nodes", "paths", "summary"}; wide: whole
                               reasons.
  -l, --selector TEXT          Only Nodes with these labels:
                               key=value[,key=value].
  --matrix                     A grid of one-character cells, with a legend.
  --color [auto|always|never]  auto: colour only on a terminal and without
                               $NO_COLOR.  [default: auto]
  -h, --help                   Show this message and exit.""",
    "port-forward": """\
Usage: caractrl port-forward [OPTIONS] PROJECT/SERVICE LOCAL:REMOTE

  Forward 127.0.0.1:LOCAL to port REMOTE of a service's container, through its
  Node's agent.

Options:
  --node NAME|HOST:PORT  Use this Node's agent (skips the Project lookup).
  -h, --help             Show this message and exit.""",
    "uncordon": """\
Usage: caractrl uncordon [OPTIONS] NODE

  Make a Node schedulable again (this also ends Draining).

Options:
  -h, --help  Show this message and exit.""",
    "version": """\
Usage: caractrl version [OPTIONS]

  Print the client and server versions, and the server's address and health.

Options:
  --client    Print the client version only; do not contact a server.
  -h, --help  Show this message and exit.""",
}
