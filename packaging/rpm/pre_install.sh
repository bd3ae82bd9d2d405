# automon %pre: create the system user and group before the files are laid down, so that
# /etc/automon/automon.toml gets group automon. This is what Fedora's %sysusers_create_compat
# expands to: the same lines as /usr/lib/sysusers.d/automon.conf (tests/packaging.rs checks
# that they match), read from stdin because the file is not installed yet.
systemd-sysusers --replace=/usr/lib/sysusers.d/automon.conf - <<'SYSUSERS' || :
u automon - "automon host monitoring daemon" /var/lib/automon
SYSUSERS
