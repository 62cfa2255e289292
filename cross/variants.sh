# shellcheck shell=bash
# The two builds of one program (sourced by cross/build, cross/qemu-check,
# cross/sizes and openwrt-package/build-ipk), as OpenWrt has dnsmasq and
# dnsmasq-full: the core (`--no-default-features`) counts the router's own
# interfaces and LAN devices; the full build (the default features) adds the
# upstream routers' scrapers. Each variant's name is its package's name and
# its binary's file name in dist/<arch>/; either package installs it as
# /usr/bin/netmeter.

# What `both` means, in this order.
# shellcheck disable=SC2034 # used by the scripts that source this
readonly ALL_VARIANTS=(core full)

# variant -> package name, and file name in dist/<arch>/.
# shellcheck disable=SC2034
declare -rA VARIANT_NAME=(
    [core]=netmeter
    [full]=netmeter-full
)

# variant -> cargo's feature arguments.
# shellcheck disable=SC2034
declare -rA VARIANT_CARGO_ARGS=(
    [core]=--no-default-features
    [full]=""
)

# variant -> the stripped size budget on every arch, in bytes (1 MiB and
# 1.5 MiB; MAX_CORE_BYTES and MAX_FULL_BYTES override them).
# shellcheck disable=SC2034
declare -rA VARIANT_BUDGET=(
    [core]=${MAX_CORE_BYTES:-1048576}
    [full]=${MAX_FULL_BYTES:-1572864}
)

# expand_variants ARG: the variants one a line (`both` for every one);
# fails on an unknown name.
expand_variants() {
    case $1 in
    both) printf '%s\n' "${ALL_VARIANTS[@]}" ;;
    core | full) echo "$1" ;;
    *)
        echo "unknown variant '$1' (known: ${ALL_VARIANTS[*]}, or both)" >&2
        return 2
        ;;
    esac
}

# The package version, <PKG_VERSION>-r<PKG_RELEASE> from
# $ROOT/openwrt-package/Makefile.
package_version() {
    local makefile=${ROOT:?}/openwrt-package/Makefile
    echo "$(sed -n 's/^PKG_VERSION:=//p' "$makefile")-r$(sed -n 's/^PKG_RELEASE:=//p' "$makefile")"
}
