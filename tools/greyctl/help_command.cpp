// greyctl help [COMMAND...] | greyctl man, and the "unknown command" message: all three read the
// command tree CLI11 holds, so what they say cannot drift from the options greyctl accepts.
#include "commands.hpp"
#include "exit_codes.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <sstream>

namespace greyctl {
namespace {

std::vector<const CLI::App*> visible_subcommands(const CLI::App& app) {
    return app.get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); });
}

// The subcommand of `parent` called `word` (hidden ones, such as `man`, only when asked for), or null.
const CLI::App* subcommand_named(const CLI::App& parent, const std::string& word, bool hidden_too) {
    for (const CLI::App* sub : parent.get_subcommands([&](const CLI::App* s) { return hidden_too || !s->get_group().empty(); }))
        if (sub->check_name(word)) return sub;
    return nullptr;
}

// Edit distance, for "did you mean": a handful of short names, so the plain dynamic programme.
std::size_t distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    std::iota(row.begin(), row.end(), std::size_t{0});
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

}  // namespace

std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates) {
    std::string nearest;
    std::size_t best = name.size() / 2 + 2;  // beyond this, a suggestion would be a guess
    for (const std::string& candidate : candidates) {
        const std::size_t d = distance(name, candidate);
        if (d < best) {
            best = d;
            nearest = candidate;
        }
    }
    return nearest;
}

namespace {

std::string unknown_command_message(const CLI::App& parent, const std::string& name) {
    std::vector<std::string> names;
    for (const CLI::App* sub : visible_subcommands(parent)) names.push_back(sub->get_name());
    const std::string nearest = nearest_name(name, names);
    const std::string where = parent.get_parent() == nullptr ? "greyctl" : "greyctl " + parent.get_name();
    return where + ": unknown command '" + name + "'" + (nearest.empty() ? "" : "; did you mean '" + nearest + "'?") +
           " (" + where + " --help lists them)";
}

// roff needs its own escapes for backslashes and for a leading '.' or '\''.
std::string roff(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
    return out;
}

std::string option_synopsis(const CLI::Option* option) {
    std::string name = option->get_name(false, true);  // every spelling: "-o,--output"
    const std::string type = option->get_type_name();
    if (option->get_expected_min() != 0 && !type.empty()) name += " " + type;
    return name;
}

void man_options(std::ostream& out, const CLI::App& app) {
    for (const CLI::Option* option : app.get_options([](const CLI::Option* o) { return !o->get_group().empty(); })) {
        if (option->get_name() == "--help" || option->get_name() == "-h,--help") continue;
        out << ".TP\n.B " << roff(option_synopsis(option)) << "\n" << roff(option->get_description()) << "\n";
    }
}

void man_commands(std::ostream& out, const CLI::App& app, const std::string& prefix) {
    for (const CLI::App* sub : visible_subcommands(app)) {
        const std::string name = prefix + sub->get_name();
        out << ".SS " << roff(name) << "\n" << roff(sub->get_description()) << "\n";
        man_options(out, *sub);
        man_commands(out, *sub, name + " ");
    }
}

}  // namespace

std::string exit_status_text() {
    std::string text = "Exit status (the same for every command; with --json an error is printed as {\"error\": {\"class\", \"exit_code\", \"status\", \"message\"}}):\n";
    for (const ExitClass& c : exit_classes) text += "  " + std::to_string(code_of(c.code)) + "  " + c.name + ": " + c.meaning + "\n";
    return text;
}

std::optional<std::string> unknown_command(const CLI::App& app, const std::vector<std::string>& args) {
    // The first word that is neither an option nor an option's value names the command.
    const CLI::App* parent = &app;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& word = args[i];
        if (word == "--") return std::nullopt;
        if (word.rfind('-', 0) == 0) {
            const std::string name = word.substr(0, word.find('='));
            const CLI::Option* option = parent->get_option_no_throw(name);
            if (option != nullptr && option->get_expected_min() > 0 && word.find('=') == std::string::npos) ++i;
            continue;
        }
        if (parent->get_subcommands([](const CLI::App*) { return true; }).empty())
            return std::nullopt;  // a positional argument of a leaf command
        const CLI::App* match = subcommand_named(*parent, word, true);
        if (match == nullptr) return unknown_command_message(*parent, word);
        parent = match;
    }
    return std::nullopt;
}

void add_help_command(CLI::App& app, Runner& run) {
    auto* help = app.add_subcommand("help", "Show the help of greyctl or of a command (greyctl help quantize, greyctl help audit verify)");
    auto words = std::make_shared<std::vector<std::string>>();
    help->add_option("command", *words, "The command (and subcommand) to describe");
    help->callback([&app, &run, words] {
        run = [&app, words] {
            const CLI::App* target = &app;
            for (const std::string& word : *words) {
                const CLI::App* match = subcommand_named(*target, word, false);
                if (match == nullptr) {
                    std::fprintf(stderr, "%s\n", unknown_command_message(*target, word).c_str());
                    return 2;
                }
                target = match;
            }
            // Not target->help(): that describes the command being run (help itself) once one is parsed.
            std::cout << target->get_formatter()->make_help(target, target->get_name(), CLI::AppFormatMode::Normal);
            return 0;
        };
    });

    auto* man = app.add_subcommand("man", "Print greyctl's manual page (roff), generated from its command definitions");
    man->group("");  // hidden: the build installs its output as greyctl(1)
    man->callback([&app, &run] {
        run = [&app] {
            std::ostringstream out;
            out << ".TH GREYCTL 1 \"\" \"greyctl " << grey_version_string() << "\" \"User Commands\"\n"
                << ".SH NAME\ngreyctl \\- " << roff(app.get_description().substr(app.get_description().find(':') + 2)) << "\n"
                << ".SH SYNOPSIS\n.B greyctl\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n"
                << ".SH DESCRIPTION\ngreyctl is the command-line front end of libgrey; it uses the library's public C API\n"
                   "and nothing else. \\fBgreyctl help\\fR \\fICOMMAND\\fR prints one command's help.\n"
                << ".SH GLOBAL OPTIONS\n";
            man_options(out, app);
            out << ".SH COMMANDS\n";
            man_commands(out, app, "");
            out << ".SH EXIT STATUS\nEvery command exits with one of these codes; with \\fB\\-\\-json\\fR an error is also printed on standard output\n"
                   "as {\"error\": {\"class\", \"exit_code\", \"status\", \"message\"}}, \\fBclass\\fR being the name given here.\n";
            for (const ExitClass& c : exit_classes)
                out << ".TP\n.B " << code_of(c.code) << "\n" << roff(c.name) << ": " << roff(c.meaning) << "\n";
            out << ".SH ENVIRONMENT\nGREY_* variables override configuration keys unless \\fB\\-\\-no\\-env\\fR is given.\n"
                << ".SH SEE ALSO\nThe documentation installed with libgrey (docs/cli.md in its source).\n";
            std::cout << out.str();
            return 0;
        };
    });
}

}  // namespace greyctl
