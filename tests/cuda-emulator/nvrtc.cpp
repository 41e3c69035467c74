/*
 * nvrtc.cpp — the CUDA emulator's libnvrtc.so.12: the NVRTC calls bindings/LrmNative.Interop/Nvrtc.cs
 * declares. A "compile" writes the program and its headers to a temporary folder and builds them
 * with the host C++ compiler (LRM_EMU_CXX, default g++) into a shared library, force-including
 * lrm_emulate.h (which lives next to this library) and defining LRM_EMULATE. That library is the
 * program's "CUBIN"; the emulator's driver loads it. Two source rewrites make CUDA C++ host C++:
 *   - `extern __shared__ T name[];` (dynamic shared memory) becomes a pointer to the block's buffer;
 *   - every `extern "C" __global__ void name(` gets an LRM_EMU_KERNEL(name, max threads) line at the
 *     end, which registers it with the launcher (max threads: its __launch_bounds__, else 1024).
 * The architecture option is accepted and ignored; -D options are passed on. Errors come back as
 * NVRTC_ERROR_COMPILATION with the compiler's output as the program log.
 * The "CUBIN" is an ELF file for EM_CUDA, as a real one is, so the CUDA backend's kernel cache checks it
 * like one; its one section holds the host shared library, which only the emulator's driver loads (a
 * real driver refuses it, and the emulator's refuses a real CUBIN).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#define EXPORT extern "C" __attribute__((visibility("default")))

typedef int nvrtcResult;
enum : int {
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_OUT_OF_MEMORY = 1,
    NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
    NVRTC_ERROR_INVALID_INPUT = 3,
    NVRTC_ERROR_INVALID_PROGRAM = 4,
    NVRTC_ERROR_INVALID_OPTION = 5,
    NVRTC_ERROR_COMPILATION = 6,
    NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION = 9,
    NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID = 10,
    NVRTC_ERROR_INTERNAL_ERROR = 11,
};

namespace {

const int kArchitectures[] = {75, 80, 86, 89, 90};
const char kPtxNote[] = "// LrmNative CUDA emulator: this program was built as a host shared library; load its CUBIN.\n";

struct Program {
    std::string source, name;
    std::vector<std::pair<std::string, std::string>> headers; /* include name, text */
    std::vector<std::string> name_expressions;
    std::string log, image;
    bool compiled = false;
};

std::string emulator_directory() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&emulator_directory), &info) && info.dli_fname) {
        std::string path = info.dli_fname;
        const size_t slash = path.rfind('/');
        return slash == std::string::npos ? "." : path.substr(0, slash);
    }
    return ".";
}

bool write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    return static_cast<bool>(out);
}

std::string quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) {
        if (c == '\'') quoted += "'\\''";
        else quoted += c;
    }
    return quoted + "'";
}

void remove_tree(const std::string& directory) {
    if (DIR* folder = opendir(directory.c_str())) {
        while (dirent* entry = readdir(folder)) {
            if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
            const std::string path = directory + "/" + entry->d_name;
            struct stat info;
            if (lstat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) remove_tree(path);
            else unlink(path.c_str());
        }
        closedir(folder);
    }
    rmdir(directory.c_str());
}

/* The host-C++ form of a CUDA program, as described at the top of this file. */
std::string translate(const std::string& source) {
    static const std::regex dynamic_shared(
        R"(extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_][\w ]*?)\s+(\w+)\s*\[\s*\]\s*;)");
    std::string text = std::regex_replace(source, dynamic_shared, "$1* $2 = ($1*)::lrm_emu::dynamic_shared();");
    static const std::regex kernel(R"(extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\(\s*([^,)]*)[^)]*\)\s*)?(\w+)\s*\()");
    std::string registrations = "\n/* registered by the CUDA emulator's NVRTC */\n";
    for (std::sregex_iterator it(text.begin(), text.end(), kernel), end; it != end; ++it) {
        const std::string bound = (*it)[1].matched ? (*it)[1].str() : "1024";
        registrations += "LRM_EMU_KERNEL(" + (*it)[2].str() + ", " + bound + ")\n";
    }
    return text + registrations;
}

/* An EM_CUDA ELF file whose section 1 (PROGBITS) is `library`, section 0 the null section, no names. */
std::string wrap_module(const std::string& library) {
    Elf64_Ehdr header{};
    memcpy(header.e_ident, ELFMAG, SELFMAG);
    header.e_ident[EI_CLASS] = ELFCLASS64;
    header.e_ident[EI_DATA] = ELFDATA2LSB;
    header.e_ident[EI_VERSION] = EV_CURRENT;
    header.e_ident[EI_OSABI] = 0x33; /* what NVIDIA's CUBINs carry */
    header.e_type = ET_EXEC;
    header.e_machine = EM_CUDA;
    header.e_version = EV_CURRENT;
    header.e_ehsize = sizeof(Elf64_Ehdr);
    header.e_shentsize = sizeof(Elf64_Shdr);
    header.e_shnum = 2;
    const size_t body = sizeof(Elf64_Ehdr), table = (body + library.size() + 7) / 8 * 8;
    header.e_shoff = table;
    Elf64_Shdr sections[2]{};
    sections[1].sh_type = SHT_PROGBITS;
    sections[1].sh_offset = body;
    sections[1].sh_size = library.size();
    sections[1].sh_addralign = 1;
    std::string image(table + sizeof sections, '\0');
    memcpy(&image[0], &header, sizeof header);
    memcpy(&image[body], library.data(), library.size());
    memcpy(&image[table], sections, sizeof sections);
    return image;
}

} // namespace

EXPORT const char* nvrtcGetErrorString(nvrtcResult result) {
    switch (result) {
    case NVRTC_SUCCESS: return "NVRTC_SUCCESS";
    case NVRTC_ERROR_OUT_OF_MEMORY: return "NVRTC_ERROR_OUT_OF_MEMORY";
    case NVRTC_ERROR_PROGRAM_CREATION_FAILURE: return "NVRTC_ERROR_PROGRAM_CREATION_FAILURE";
    case NVRTC_ERROR_INVALID_INPUT: return "NVRTC_ERROR_INVALID_INPUT";
    case NVRTC_ERROR_INVALID_PROGRAM: return "NVRTC_ERROR_INVALID_PROGRAM";
    case NVRTC_ERROR_INVALID_OPTION: return "NVRTC_ERROR_INVALID_OPTION";
    case NVRTC_ERROR_COMPILATION: return "NVRTC_ERROR_COMPILATION";
    case NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION: return "NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION";
    case NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID: return "NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID";
    default: return "NVRTC_ERROR_INTERNAL_ERROR";
    }
}

EXPORT nvrtcResult nvrtcVersion(int* major, int* minor) {
    if (!major || !minor) return NVRTC_ERROR_INVALID_INPUT;
    *major = 12;
    *minor = 4;
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcGetNumSupportedArchs(int* count) {
    if (!count) return NVRTC_ERROR_INVALID_INPUT;
    *count = (int)(sizeof kArchitectures / sizeof kArchitectures[0]);
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcGetSupportedArchs(int* architectures) {
    if (!architectures) return NVRTC_ERROR_INVALID_INPUT;
    memcpy(architectures, kArchitectures, sizeof kArchitectures);
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcCreateProgram(void** program, const char* source, const char* name, int header_count,
                                      const char* const* headers, const char* const* include_names) {
    if (!program || !source || header_count < 0 || (header_count > 0 && (!headers || !include_names))) return NVRTC_ERROR_INVALID_INPUT;
    Program* p = new Program();
    p->source = source;
    p->name = name ? name : "default_program";
    for (int i = 0; i < header_count; ++i) {
        if (!headers[i] || !include_names[i]) {
            delete p;
            return NVRTC_ERROR_INVALID_INPUT;
        }
        p->headers.emplace_back(include_names[i], headers[i]);
    }
    *program = p;
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcDestroyProgram(void** program) {
    if (!program) return NVRTC_ERROR_INVALID_PROGRAM;
    delete static_cast<Program*>(*program);
    *program = nullptr;
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcCompileProgram(void* program, int option_count, const char* const* options) {
    if (!program || option_count < 0 || (option_count > 0 && !options)) return NVRTC_ERROR_INVALID_INPUT;
    Program& p = *static_cast<Program*>(program);
    std::string defines;
    for (int i = 0; i < option_count; ++i) {
        const std::string option = options[i] ? options[i] : "";
        if (option.rfind("-D", 0) == 0) defines += " " + quote(option);
        else if (option.rfind("--define-macro=", 0) == 0) defines += " " + quote("-D" + option.substr(15));
        else if (option.rfind("--gpu-architecture=", 0) == 0 || option.rfind("-arch=", 0) == 0 || option.rfind("-std=", 0) == 0 ||
                 option.rfind("--fmad=", 0) == 0 || option.rfind("-default-device", 0) == 0 || option.rfind("-lineinfo", 0) == 0 ||
                 option.rfind("--use_fast_math", 0) == 0) {
            continue; /* meaningful to NVRTC, not to a host build */
        } else {
            p.log = "nvrtc (emulator): unknown option '" + option + "'\n";
            return NVRTC_ERROR_INVALID_OPTION;
        }
    }
    const char* temp = getenv("TMPDIR");
    std::string pattern = std::string(temp && *temp ? temp : "/tmp") + "/lrm-emu-nvrtc-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!mkdtemp(buffer.data())) {
        p.log = "nvrtc (emulator): cannot create a temporary folder\n";
        return NVRTC_ERROR_INTERNAL_ERROR;
    }
    const std::string directory = buffer.data();
    bool ok = true;
    for (const auto& header : p.headers) {
        if (header.first.find('/') != std::string::npos || header.first.find("..") != std::string::npos) continue;
        ok = ok && write_file(directory + "/" + header.first, header.second);
    }
    std::string source_name = p.name;
    const size_t slash = source_name.rfind('/');
    if (slash != std::string::npos) source_name = source_name.substr(slash + 1);
    const std::string source_path = directory + "/" + source_name;
    const std::string output_path = directory + "/module.so";
    ok = ok && write_file(source_path, translate(p.source));
    if (!ok) {
        remove_tree(directory);
        p.log = "nvrtc (emulator): cannot write the program to a temporary folder\n";
        return NVRTC_ERROR_INTERNAL_ERROR;
    }
    const char* compiler = getenv("LRM_EMU_CXX");
    const std::string command = quote(compiler && *compiler ? compiler : "g++") +
                                " -x c++ -std=c++17 -O2 -g0 -mpopcnt -fPIC -shared -fvisibility=hidden -w -fno-strict-aliasing -include " +
                                quote(emulator_directory() + "/lrm_emulate.h") + " -I" + quote(directory) + defines + " -o " +
                                quote(output_path) + " " + quote(source_path) + " 2>&1";
    std::string log;
    int status = -1;
    if (FILE* pipe = popen(command.c_str(), "r")) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, pipe)) > 0) log.append(chunk, n);
        status = pclose(pipe);
    }
    p.log = log;
    if (status != 0) {
        p.log = "nvrtc (emulator): " + command + "\n" + log;
        remove_tree(directory);
        return NVRTC_ERROR_COMPILATION;
    }
    std::ifstream in(output_path, std::ios::binary);
    std::ostringstream image;
    image << in.rdbuf();
    const std::string library = image.str();
    remove_tree(directory);
    if (library.empty()) {
        p.log += "nvrtc (emulator): the compiler wrote no module\n";
        return NVRTC_ERROR_COMPILATION;
    }
    p.image = wrap_module(library);
    p.compiled = true;
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcGetProgramLogSize(void* program, size_t* size) {
    if (!program || !size) return NVRTC_ERROR_INVALID_INPUT;
    *size = static_cast<Program*>(program)->log.size() + 1;
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcGetProgramLog(void* program, char* log) {
    if (!program || !log) return NVRTC_ERROR_INVALID_INPUT;
    const std::string& text = static_cast<Program*>(program)->log;
    memcpy(log, text.c_str(), text.size() + 1);
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcGetPTXSize(void* program, size_t* size) {
    if (!program || !size) return NVRTC_ERROR_INVALID_INPUT;
    if (!static_cast<Program*>(program)->compiled) return NVRTC_ERROR_INVALID_PROGRAM;
    *size = sizeof kPtxNote;
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcGetPTX(void* program, char* ptx) {
    if (!program || !ptx) return NVRTC_ERROR_INVALID_INPUT;
    if (!static_cast<Program*>(program)->compiled) return NVRTC_ERROR_INVALID_PROGRAM;
    memcpy(ptx, kPtxNote, sizeof kPtxNote);
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcGetCUBINSize(void* program, size_t* size) {
    if (!program || !size) return NVRTC_ERROR_INVALID_INPUT;
    const Program& p = *static_cast<Program*>(program);
    if (!p.compiled) return NVRTC_ERROR_INVALID_PROGRAM;
    *size = p.image.size();
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcGetCUBIN(void* program, char* cubin) {
    if (!program || !cubin) return NVRTC_ERROR_INVALID_INPUT;
    const Program& p = *static_cast<Program*>(program);
    if (!p.compiled) return NVRTC_ERROR_INVALID_PROGRAM;
    memcpy(cubin, p.image.data(), p.image.size());
    return NVRTC_SUCCESS;
}

EXPORT nvrtcResult nvrtcAddNameExpression(void* program, const char* expression) {
    if (!program || !expression) return NVRTC_ERROR_INVALID_INPUT;
    static_cast<Program*>(program)->name_expressions.emplace_back(expression);
    return NVRTC_SUCCESS;
}

/* Our kernels are extern "C": the lowered name is the name. */
EXPORT nvrtcResult nvrtcGetLoweredName(void* program, const char* expression, const char** lowered) {
    if (!program || !expression || !lowered) return NVRTC_ERROR_INVALID_INPUT;
    Program& p = *static_cast<Program*>(program);
    if (!p.compiled) return NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION;
    for (const std::string& name : p.name_expressions) {
        if (name == expression) {
            *lowered = name.c_str();
            return NVRTC_SUCCESS;
        }
    }
    return NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID;
}
