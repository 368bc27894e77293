#!/usr/bin/env bash
# An emulated droplet, booted from the exact user data the program generates: a Debian root
# filesystem with systemd, cloud-init, OpenSSH and Docker, started with systemd as its PID 1 in
# namespaces of its own (PID, mount, UTS, IPC, network) and a NoCloud seed holding the user data.
# cloud-init then does to it what it does to a droplet at first boot: host keys, the deploy user,
# sshd's hardening, the files, the coop-agent unit. The program then uses it as a host over SSH.
#
#   scripts/droplet.sh image                     build the root filesystem (cached by its inputs)
#   scripts/droplet.sh boot NAME USER_DATA       boot droplet NAME (1-9) from USER_DATA; prints its address
#   scripts/droplet.sh pid NAME                  its PID 1, as this machine sees it (for nsenter)
#   scripts/droplet.sh down NAME                 power it off and remove its namespaces and files
#
# Where it differs from a droplet of DigitalOcean's ubuntu-24-04-x64 image (and what a test on it
# therefore does not verify):
#   - Debian bookworm, not Ubuntu 24.04; Docker is Debian's docker.io, preinstalled, and the user
#     data is the program's with `docker: "preinstalled"`: no apt call at first boot (this machine
#     has no network to Docker's apt repository). That is the one input that differs.
#   - The datasource is NoCloud from a seed directory, not DigitalOcean's metadata service; the
#     network is a veth pair to this machine (10.232.0.0/24), configured before boot, not DHCP.
#   - The image's registry and the local PostgreSQL are reached through relays on the droplet's
#     loopback and every address (as scripts/netns-hosts.sh does for its hosts).
#   - The kernel is this machine's; udev does nothing (sysfs is read-only in the droplet).
# Must run as root.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,locales,cloud-init,python3-cffi-backend,openssh-server,docker.io,unattended-upgrades,sudo,iproute2,ca-certificates,procps,netbase
MIRROR=${COOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
STATE=$COOP_ROOT/.local/droplets
NET=10.232.0
# Ports of this machine's loopback the droplet reaches as its own: the registries and PostgreSQL.
RELAYED=(5001 5002 5433)

# The emulation's own cloud-init settings: NoCloud only, and the network left as it was booted.
EMULATION_CFG='datasource_list: [NoCloud, None]
network: {config: disabled}
'

rootfs_key() {
  printf 'suite %s\npackages %s\ncfg %s\nmasked console-getty\nen_US.UTF-8\ndebootstrap %s\n' "$SUITE" "$PACKAGES" "$EMULATION_CFG" \
    "$(dpkg-query -W -f '${Version}' debootstrap 2>/dev/null || echo unknown)" | sha256sum | cut -c1-12
}

ROOTFS=$COOP_TOOLCHAIN_CACHE/droplet-rootfs-$(rootfs_key)

# cmd_image: debootstraps the root filesystem once; a droplet boots from an overlay of it.
cmd_image() {
  [[ -f $ROOTFS/.complete ]] && return
  need debootstrap "apt-get install debootstrap"
  say "building the droplet root filesystem in $ROOTFS (a few minutes, once)"
  rm -rf "$ROOTFS.tmp"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS.tmp" "$MIRROR" >"$ROOTFS.log" 2>&1 ||
    die "debootstrap failed; see $ROOTFS.log"
  # As a cloud image ships: no host keys (cloud-init makes or installs them), no machine id.
  rm -f "$ROOTFS.tmp"/etc/ssh/ssh_host_*
  : >"$ROOTFS.tmp/etc/machine-id"
  printf '%s' "$EMULATION_CFG" >"$ROOTFS.tmp/etc/cloud/cloud.cfg.d/90-coop-emulation.cfg"
  # Ubuntu's cloud images ship en_US.UTF-8, which cloud-init sets as the locale; Debian's
  # locale-gen makes only what /etc/locale.gen names (Ubuntu's takes the name from cloud-init).
  sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' "$ROOTFS.tmp/etc/locale.gen"
  chroot "$ROOTFS.tmp" locale-gen >>"$ROOTFS.log" 2>&1 || die "locale-gen failed in the droplet root filesystem; see $ROOTFS.log"
  # No console to log in on: its getty would only fail.
  ln -sf /dev/null "$ROOTFS.tmp/etc/systemd/system/console-getty.service"
  rm -rf "$ROOTFS.tmp"/var/cache/apt/* "$ROOTFS.tmp"/var/lib/apt/lists/* "$ROOTFS.tmp"/usr/share/doc/* "$ROOTFS.tmp"/usr/share/man/*
  touch "$ROOTFS.tmp/.complete"
  mv "$ROOTFS.tmp" "$ROOTFS"
}

check_name() {
  [[ ${1:-} =~ ^[1-9]$ ]] || die "NAME must be a digit from 1 to 9 (got '${1:-}')"
}

ns() { echo "coop-droplet-$1"; }
addr() { echo "$NET.$((10 + $1))"; }
gateway() { echo "$NET.$((100 + $1))"; }

# cmd_boot NAME USER_DATA: a fresh droplet (nothing kept from an earlier boot of that name).
cmd_boot() {
  check_name "$1"
  [[ -f ${2:-} ]] || die "USER_DATA must be a file (got '${2:-}')"
  [[ $(id -u) == 0 ]] || die "must run as root (namespaces, mounts, the droplet's systemd)"
  for c in ip unshare nsenter socat; do need "$c" "run scripts/setup.sh"; done
  cmd_image
  cmd_down "$1" 2>/dev/null || true
  local dir=$STATE/$1 n=$1 port
  install -d -m 0700 "$dir"
  install -d "$dir/upper" "$dir/work" "$dir/root" "$dir/docker" "$dir/seed"
  install -m 0600 "$2" "$dir/seed/user-data"
  printf 'instance-id: droplet-%s\nlocal-hostname: droplet-%s\n' "$n" "$n" >"$dir/seed/meta-data"

  # The network: a veth pair, this machine's end $NET.(100+N), the droplet's $NET.(10+N).
  ip netns add "$(ns "$n")"
  ip link add "cdrop$n" type veth peer name eth0 netns "$(ns "$n")"
  ip addr add "$(gateway "$n")/32" dev "cdrop$n"
  ip link set "cdrop$n" up
  ip route replace "$(addr "$n")/32" dev "cdrop$n" src "$(gateway "$n")"
  ip -n "$(ns "$n")" link set lo up
  ip -n "$(ns "$n")" addr add "$(addr "$n")/32" dev eth0
  ip -n "$(ns "$n")" link set eth0 up
  ip -n "$(ns "$n")" route add "$(gateway "$n")/32" dev eth0
  ip -n "$(ns "$n")" route add default via "$(gateway "$n")" dev eth0
  for port in "${RELAYED[@]}"; do
    setsid socat "TCP-LISTEN:$port,bind=$(gateway "$n"),fork,reuseaddr" "TCP:127.0.0.1:$port" >>"$dir/relay.log" 2>&1 </dev/null &
    echo $! >>"$dir/relay.pids"
    setsid nsenter --net="/run/netns/$(ns "$n")" socat "TCP-LISTEN:$port,fork,reuseaddr" "TCP:$(gateway "$n"):$port" >>"$dir/relay.log" 2>&1 </dev/null &
    echo $! >>"$dir/relay.pids"
  done

  # Its own cgroup in every hierarchy, which its systemd takes as its root.
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -w $h ]] || continue
    mkdir -p "$h$(ns "$n")"
    # A cpuset takes no process before it has CPUs and memory nodes: its parent's.
    if [[ -f $h/cpuset.cpus ]]; then
      cat "$h/cpuset.cpus" >"$h$(ns "$n")/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h$(ns "$n")/cpuset.mems"
    fi
  done

  say "booting droplet-$n ($(addr "$n"); console: $dir/console.log)"
  setsid nsenter --net="/run/netns/$(ns "$n")" unshare --pid --fork --mount --uts --ipc --propagation private \
    "$COOP_ROOT/scripts/droplet.sh" init "$n" >"$dir/console.log" 2>&1 </dev/null &
  echo $! >"$dir/boot.pid"
  addr "$n"
}

# cmd_init NAME: inside the droplet's new namespaces (PID 1 is this shell until it becomes
# systemd): the root filesystem as an overlay, the kernel's file systems, then systemd.
cmd_init() {
  local n=$1 dir=$STATE/$1 r h
  r=$dir/root
  for h in /sys/fs/cgroup/*/; do
    [[ -w $h$(ns "$n")/cgroup.procs ]] && echo $$ >"$h$(ns "$n")/cgroup.procs"
  done
  mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$dir/upper,workdir=$dir/work" "$r"
  mkdir -p "$r/var/lib/cloud/seed/nocloud" "$r/var/lib/docker"
  mount --bind "$dir/seed" "$r/var/lib/cloud/seed/nocloud"
  # Docker's overlay2 cannot sit on an overlay: its data on this machine's file system.
  mount --bind "$dir/docker" "$r/var/lib/docker"
  mount -t proc proc "$r/proc"
  mount -t sysfs -o ro sysfs "$r/sys"
  mount --rbind /sys/fs/cgroup "$r/sys/fs/cgroup"
  mount -t tmpfs -o mode=0755,nosuid tmpfs "$r/dev"
  # Device nodes of its own (made, not bound: the droplet's systemd changes their owners and
  # modes, which on a bound node would change this machine's), and no console.
  local d
  for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name major minor <<<"$d"
    mknod -m 0666 "$r/dev/$name" c "$major" "$minor"
  done
  mkdir -p "$r/dev/pts" "$r/dev/shm" "$r/dev/mqueue"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
  ln -sf pts/ptmx "$r/dev/ptmx"
  mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
  ln -sf /proc/self/fd "$r/dev/fd"
  mount -t tmpfs -o mode=0755 tmpfs "$r/run"
  mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
  hostname "droplet-$n"
  cd "$r"
  mkdir -p .oldroot
  pivot_root . .oldroot
  umount -l /.oldroot
  rmdir /.oldroot
  exec env -i container=coop-droplet TERM=dumb /sbin/init
}

# cmd_pid NAME: the droplet's PID 1 as this machine sees it.
cmd_pid() {
  check_name "$1"
  local boot
  boot=$(cat "$STATE/$1/boot.pid" 2>/dev/null) || return 1
  # That is unshare (setsid and nsenter exec it), whose forked child is the droplet's PID 1.
  pgrep -P "$boot" | head -n1
}

# cmd_down NAME: power off (systemd's SIGRTMIN+4), then whatever is left.
cmd_down() {
  check_name "$1"
  local n=$1 dir=$STATE/$1 pid h
  if pid=$(cmd_pid "$n") && [[ -n $pid ]]; then
    kill -s RTMIN+4 "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  [[ -f $dir/boot.pid ]] && kill "$(cat "$dir/boot.pid")" 2>/dev/null
  if [[ -f $dir/relay.pids ]]; then
    xargs -r kill <"$dir/relay.pids" 2>/dev/null || true
  fi
  ip netns del "$(ns "$n")" 2>/dev/null || true
  ip link del "cdrop$n" 2>/dev/null || true
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h$(ns "$n") ]] && find "$h$(ns "$n")" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$dir"
}

case ${1:-} in
  image) cmd_image ;;
  boot) shift && cmd_boot "$@" ;;
  init) shift && cmd_init "$@" ;;
  pid) shift && cmd_pid "$@" ;;
  down) shift && cmd_down "$@" ;;
  *) die "usage: scripts/droplet.sh image | boot NAME USER_DATA | pid NAME | down NAME" ;;
esac
