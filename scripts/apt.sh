# Sourced by scripts/setup.sh and scripts/android-toolchain.sh.
# apt_update [APT OPTIONS...]: apt-get update, which ignores DPkg::Lock::Timeout for the lists lock
# (apt 2.6): retry while another process holds it, and fail at once on anything else.
apt_update() {
  local err
  for _ in $(seq 120); do
    err=$(apt-get "$@" update -qq 2>&1) && return 0
    case $err in *"Could not get lock"*) echo "$(basename "$0"): waiting for the apt lists lock" >&2; sleep 5 ;;
      *) echo "$err" >&2; return 1 ;;
    esac
  done
  echo "$err" >&2
  return 1
}
