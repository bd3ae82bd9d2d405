# automon %post: %tmpfiles_create_package, then %systemd_post. Fedora's rule: a package only
# applies the preset on first install and never force-enables; on Fedora the default preset
# for a new service is disabled, so the admin runs `systemctl enable --now automon`.
systemd-tmpfiles --create /usr/lib/tmpfiles.d/automon.conf >/dev/null 2>&1 || :
if [ $1 -eq 1 ]; then
    if [ -x /usr/lib/systemd/systemd-update-helper ]; then
        /usr/lib/systemd/systemd-update-helper install-system-units automon.service || :
    else
        systemctl --no-reload preset automon.service >/dev/null 2>&1 || :
    fi
fi
