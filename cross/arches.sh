# shellcheck shell=bash
# The router architectures cross/build and cross/qemu-check know (sourced).
# Each is an OpenWrt package architecture (`opkg print-architecture`).

# OpenWrt arch -> Rust target. Every ARM name here is ARMv7-A with VFPv3-D16
# or better (the armv7 target's baseline; no NEON needed); both aarch64
# names run the same generic ARMv8-A binary.
# shellcheck disable=SC2034 # used by the scripts that source this
declare -rA TARGET=(
    [x86_64]=x86_64-unknown-linux-musl
    [aarch64_generic]=aarch64-unknown-linux-musl
    [aarch64_cortex-a53]=aarch64-unknown-linux-musl
    [arm_cortex-a7_neon-vfpv4]=armv7-unknown-linux-musleabihf
    [arm_cortex-a9_vfpv3-d16]=armv7-unknown-linux-musleabihf
    [mipsel_24kc]=mipsel-unknown-linux-musl
    [mips_24kc]=mips-unknown-linux-musl
)

# OpenWrt arch -> how this x86_64 machine runs it: qemu-user with the
# router's CPU, or nothing (native).
# shellcheck disable=SC2034
declare -rA QEMU=(
    [x86_64]=""
    [aarch64_generic]="qemu-aarch64 -cpu cortex-a53"
    [aarch64_cortex-a53]="qemu-aarch64 -cpu cortex-a53"
    [arm_cortex-a7_neon-vfpv4]="qemu-arm -cpu cortex-a7"
    [arm_cortex-a9_vfpv3-d16]="qemu-arm -cpu cortex-a9"
    [mipsel_24kc]="qemu-mipsel -cpu 24Kc"
    [mips_24kc]="qemu-mips -cpu 24Kc"
)

# What `all` means, in this order.
# shellcheck disable=SC2034
readonly ALL_ARCHES=(x86_64 aarch64_generic aarch64_cortex-a53 arm_cortex-a7_neon-vfpv4
    arm_cortex-a9_vfpv3-d16 mipsel_24kc mips_24kc)

# expand_arches ARG...: the arches named (`all` for every one), each once,
# in order, one a line; fails on an unknown name.
expand_arches() {
    local -A seen=()
    local arg arch
    for arg in "$@"; do
        local names=("$arg")
        [[ $arg == all ]] && names=("${ALL_ARCHES[@]}")
        for arch in "${names[@]}"; do
            if [[ -z ${TARGET[$arch]:-} ]]; then
                echo "unknown ARCH '$arch' (known: ${ALL_ARCHES[*]}, or all)" >&2
                return 2
            fi
            [[ -n ${seen[$arch]:-} ]] && continue
            seen[$arch]=1
            echo "$arch"
        done
    done
}
