# Functions the set-up scripts share; sourced, not run.

# sudo_if_needed runs its arguments as root: directly when already root.
sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install installs Debian packages, updating the package lists once.
# Another apt-get at work (a second checkout's set-up, unattended
# upgrades) holds dpkg's lock: wait for it, up to 10 minutes, instead of
# failing at once.
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt_updated=1
  fi
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}
