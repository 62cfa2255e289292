# shellcheck shell=bash
# What build-ipk and build-apk share (sourced by both, after they cd into
# openwrt-package/ and set HERE, ROOT and CALLER_DIR): the command line
# (--variant, --binary, --out, ARCH), the fields read from the Makefile,
# the time every file gets, and the tree both formats install.

# shellcheck source=cross/variants.sh
. "$ROOT/cross/variants.sh"

# parse_args USAGE ARG...: sets binary, out, arch and variants (an array).
parse_args() {
    local usage_text=$1
    shift
    usage() {
        echo "usage: $usage_text" >&2
        exit 2
    }
    binary="" out=${NETMETER_DIST:-$ROOT/dist} arch=""
    local variant_arg=both list
    while (($#)); do
        case $1 in
        --binary | --out | --variant)
            (($# >= 2)) || usage
            case $1 in
            --binary) binary=$2 && [[ $binary == /* ]] || binary=$CALLER_DIR/$2 ;;
            --out) out=$2 && [[ $out == /* ]] || out=$CALLER_DIR/$2 ;;
            --variant) variant_arg=$2 ;;
            esac
            shift 2
            ;;
        -h | --help | -*) usage ;;
        *)
            [[ -z $arch ]] || usage
            arch=$1
            shift
            ;;
        esac
    done
    [[ -n $arch ]] || usage
    if [[ $arch =~ [^a-zA-Z0-9_.+-] ]]; then
        echo "ARCH '$arch' has characters a package architecture cannot have" >&2
        exit 2
    fi
    list=$(expand_variants "$variant_arg") || usage
    mapfile -t variants <<<"$list"
    if [[ -n $binary ]] && ((${#variants[@]} != 1)); then
        echo "--binary packs one binary: give --variant core or --variant full with it" >&2
        exit 2
    fi
}

make_var() { sed -n "s/^$1:=//p" "$HERE/Makefile"; }
# The default of a `NAME ?= value` knob.
make_default() { sed -n "s/^$1 ?= *//p" "$HERE/Makefile"; }
# A field of `define Package/NAME` (NAME may hold a slash: netmeter/Default).
package_var() { sed -n "/^define Package\/${1//\//\\/}$/,/^endef$/s/^ *$2:=//p" "$HERE/Makefile"; }
# The body of `define Package/NAME/PART`.
package_define() { sed -n "/^define Package\/$1\/$2$/,/^endef$/{/^define \|^endef$/!p}" "$HERE/Makefile"; }

# read_fields: sets version, maintainer, url and epoch, or fails saying why.
# shellcheck disable=SC2034 # the globals it sets are for the packers
read_fields() {
    local cargo_version value
    version=$(package_version)
    cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)
    if [[ $(make_var PKG_VERSION) != "$cargo_version" ]]; then
        echo "openwrt-package/Makefile has PKG_VERSION $(make_var PKG_VERSION), Cargo.toml $cargo_version: make them agree" >&2
        exit 1
    fi
    # Set (even to nothing) in the environment, as make's `?=` takes it; else
    # the Makefile's default.
    maintainer=${NETMETER_MAINTAINER-$(make_default NETMETER_MAINTAINER)}
    url=${NETMETER_URL-$(make_default NETMETER_URL)}
    for value in "$maintainer" "$url"; do
        if [[ $value == *$'\n'* ]]; then
            echo "NETMETER_MAINTAINER and NETMETER_URL are one line each" >&2
            exit 2
        fi
    done
    if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
        epoch=$SOURCE_DATE_EPOCH
    elif ! epoch=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null) || [[ -z $epoch ]]; then
        echo "no git history here: set SOURCE_DATE_EPOCH (the packages' file time, in unix seconds)" >&2
        exit 1
    fi
}

# other_name VARIANT: the other variant's package name.
other_name() {
    local v
    for v in "${ALL_VARIANTS[@]}"; do [[ $v == "$1" ]] || echo "${VARIANT_NAME[$v]}"; done
}

# check_package VARIANT BINARY: the Makefile defines the package, its
# conflicts are the ones the packers know, and the binary is there.
check_package() {
    local variant=$1 binary=$2 name=${VARIANT_NAME[$1]} conflicts other
    other=$(other_name "$variant")
    grep -qx "define Package/$name" "$HERE/Makefile" || {
        echo "openwrt-package/Makefile defines no package $name" >&2
        return 1
    }
    # The Makefile names the conflict on one side only (menuconfig refuses
    # a cycle of conflicts).
    conflicts=$(package_var "$name" CONFLICTS)
    if [[ -n $conflicts && $conflicts != "$other" ]]; then
        echo "Package/$name has CONFLICTS:=$conflicts; the packers know only $other" >&2
        return 1
    fi
    [[ -f $binary ]] || {
        echo "no binary at $binary: run cross/build --variant $variant $arch first, or give --binary FILE" >&2
        return 1
    }
}

# stage_data DIR BINARY: the files the package installs (as
# Package/netmeter/install in the Makefile puts them), under DIR.
stage_data() {
    local data=$1 binary=$2
    install -d -m 0755 "$data" "$data/usr/bin" "$data/etc/config" "$data/etc/init.d" \
        "$data/etc/uci-defaults" "$data/lib/upgrade/keep.d"
    install -m 0755 "$binary" "$data/usr/bin/netmeter"
    install -m 0644 "$HERE/files/netmeter.config" "$data/etc/config/netmeter"
    install -m 0755 "$HERE/files/netmeter.init" "$data/etc/init.d/netmeter"
    install -m 0755 "$HERE/files/netmeter.uci-defaults" "$data/etc/uci-defaults/90-netmeter"
    install -m 0644 "$HERE/files/netmeter.keep" "$data/lib/upgrade/keep.d/netmeter"
}

# conffiles DATA: the Makefile's conffiles that are files in the package,
# sorted (as ipkg-build keeps them); fails on one that is not there.
conffiles() {
    local data=$1 conffile
    while IFS= read -r conffile; do
        [[ -f $data$conffile ]] || {
            echo "conffile $conffile is not in the package" >&2
            return 1
        }
        echo "$conffile"
    done < <(package_define netmeter conffiles) | LC_ALL=C sort
}
