# Shared by scripts/bench-vs-node-exporter.sh and scripts/symbol-order.sh, so that the function
# order is generated under the same configuration the benchmark measures. Source it.

# Prints a free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# bench_config DIR PORT: writes DIR/automon.toml, embedded defaults with every collector at 1 s.
bench_config() {
  cat > "$1/automon.toml" <<TOML
data_dir = "$1/data"
[http]
listen = "127.0.0.1:$2"
[collectors]
default_interval = "1s"
TOML
}
