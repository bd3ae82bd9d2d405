# automon %postun: %systemd_postun_with_restart. On upgrade restart the service if it runs
# (try-restart), so the new binary takes over; the data in /var/lib/automon is never removed
# by rpm (RPM has no purge; delete it by hand after erasing the package if it is not wanted).
if [ $1 -ge 1 ]; then
    if [ -x /usr/lib/systemd/systemd-update-helper ]; then
        /usr/lib/systemd/systemd-update-helper mark-restart-system-units automon.service || :
    else
        systemctl try-restart automon.service >/dev/null 2>&1 || :
    fi
fi
systemctl daemon-reload >/dev/null 2>&1 || :
