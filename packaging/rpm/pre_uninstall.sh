# automon %preun: %systemd_preun. On erase (not upgrade) disable and stop the service.
if [ $1 -eq 0 ]; then
    if [ -x /usr/lib/systemd/systemd-update-helper ]; then
        /usr/lib/systemd/systemd-update-helper remove-system-units automon.service || :
    else
        systemctl --no-reload disable --now automon.service >/dev/null 2>&1 || :
    fi
fi
