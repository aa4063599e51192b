# shellcheck shell=bash
# Portable option parsing for Echelon recipes (bash >= 3.2; no GNU getopt, works on macOS).
#
# Usage, inside a recipe, before sourcing this file:
#
#     stage=0 stop_stage=7 dataset=mini force=false      # every default becomes an option
#     recipe_options="stage stop_stage dataset force"    # the names the recipe accepts
#     help_message="usage text printed by --help"        # optional
#     . egs/utils/parse_options.sh "$@"
#
# Rules (the same for every recipe):
#   --name value | --name=value   sets the variable "name" (dashes in the name count as underscores);
#   --flag                        for a variable whose default is true/false, a bare flag means true;
#   --a.b.c value                 a dotted key is a CONFIG OVERRIDE: appended to the array
#                                 config_overrides as "a.b.c=value" (the recipe forwards it to the Python CLIs);
#   -h | --help                   prints $help_message and exits 0;
#   anything else                 is an error that names the option and says how to forward it.
# Positional arguments are left in the array positional_args.

config_overrides=()
positional_args=()

_echelon_die_option() {
    echo "${0##*/}: $*" >&2
    echo "${0##*/}: run '${0##*/} --help' for the options" >&2
    exit 2
}

_echelon_is_option() {
    local candidate
    for candidate in ${recipe_options:-}; do
        [ "$candidate" = "$1" ] && return 0
    done
    return 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help)
            printf '%s\n' "${help_message:-No help for ${0##*/}.}"
            exit 0
            ;;
        --)
            shift
            positional_args+=("$@")
            break
            ;;
        --*)
            _opt="${1#--}"
            _has_value=false
            case "$_opt" in
                *=*)
                    _value="${_opt#*=}"
                    _opt="${_opt%%=*}"
                    _has_value=true
                    ;;
            esac
            [ -n "$_opt" ] || _echelon_die_option "empty option name in '$1'"
            _name="$(printf '%s' "$_opt" | tr '-' '_')"
            shift
            case "$_name" in
                *.*)
                    # A dotted key is a config override (e.g. --train.max_steps 5).
                    if ! $_has_value; then
                        [ $# -gt 0 ] || _echelon_die_option "option --$_opt needs a value"
                        _value="$1"
                        shift
                    fi
                    config_overrides+=("$_name=$_value")
                    continue
                    ;;
            esac
            if ! _echelon_is_option "$_name"; then
                _echelon_die_option "unknown option --$_opt (dotted keys like --train.max_steps 5 are config" \
                    "overrides; other Python options go through the --*_args options listed by --help)"
            fi
            _default="$(eval "printf '%s' \"\${$_name}\"")"
            if ! $_has_value; then
                if { [ "$_default" = true ] || [ "$_default" = false ]; } && { [ $# -eq 0 ] || [ "${1#--}" != "$1" ]; }; then
                    _value=true # bare boolean flag
                elif [ $# -gt 0 ]; then
                    _value="$1"
                    # "--ngpu --exp_dir x": a value that is itself one of our options means the value was forgotten.
                    _next="$(printf '%s' "${_value#--}" | tr '-' '_')"
                    if [ "${_value#--}" != "$_value" ] && _echelon_is_option "${_next%%=*}"; then
                        _echelon_die_option "option --$_opt needs a value (got the option $_value instead)"
                    fi
                    shift
                else
                    _echelon_die_option "option --$_opt needs a value"
                fi
            fi
            if [ "$_default" = true ] || [ "$_default" = false ]; then
                case "$_value" in
                    true | false) ;;
                    *) _echelon_die_option "option --$_opt takes true or false, not '$_value'" ;;
                esac
            fi
            printf -v "$_name" '%s' "$_value"
            ;;
        *)
            positional_args+=("$1")
            shift
            ;;
    esac
done
unset _opt _name _value _default _has_value _next
