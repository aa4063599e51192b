# shellcheck shell=bash
# Corpus download helpers shared by recipes (need log/die from egs/utils/stage.sh and $python from env.sh).
#
#   url_reachable URL                 true when the URL answers within 15 s (curl or wget)
#   fetch_and_extract URL DEST_DIR    download (resumable, atomic rename) into DEST_DIR and unpack there;
#                                     a DEST_DIR/.<archive>.extracted marker makes a second call a no-op

url_reachable() {
    if command -v curl >/dev/null 2>&1; then
        curl -sfIL --max-time 15 -o /dev/null "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q --spider --timeout=15 --tries=1 "$1"
    else
        return 1
    fi
}

fetch_and_extract() {
    local url="$1" dest="$2" archive
    archive="$dest/$(basename "$url")"
    mkdir -p "$dest"
    if [ -f "$dest/.$(basename "$url").extracted" ]; then
        log "$(basename "$url") already downloaded and unpacked in $dest"
        return 0
    fi
    if [ ! -f "$archive" ]; then
        log "downloading $url -> $archive"
        if command -v curl >/dev/null 2>&1; then
            curl -fL --retry 3 -C - -o "$archive.part" "$url" || die "download failed: $url"
        else
            wget -c -O "$archive.part" "$url" || die "download failed: $url"
        fi
        mv -f "$archive.part" "$archive"
    fi
    log "unpacking $archive"
    case "$archive" in
        *.zip) "$python" -m zipfile -e "$archive" "$dest" || die "cannot unpack $archive" ;;
        *.tar.gz | *.tgz | *.tar.bz2 | *.tar) tar -xf "$archive" -C "$dest" || die "cannot unpack $archive" ;;
        *) die "unknown archive type: $archive" ;;
    esac
    touch "$dest/.$(basename "$url").extracted"
}
