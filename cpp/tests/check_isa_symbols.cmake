# Fails if an object file built for instruction set ISA defines external code (nm types T, W, i)
# outside namespace blockprop::ISA. Data (e.g. DW.ref.__gxx_personality_v0) holds no instructions. Such a symbol (typically an inline function or template emitted as a weak
# definition) exists in every instruction set's build under one name; the linker keeps one of them,
# and if it keeps the AVX-512 one the portable path crashes with SIGILL on CPUs without AVX-512.
# Usage: cmake -DNM=nm -DISA=avx512 -DOBJECTS="a.o|b.o" -P check_isa_symbols.cmake
string(REPLACE "|" ";" objects "${OBJECTS}")
set(bad "")
foreach(obj IN LISTS objects)
  execute_process(COMMAND ${NM} -C --defined-only --extern-only ${obj}
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm failed on ${obj}")
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line IN LISTS lines)
    if(line STREQUAL "" OR line MATCHES "blockprop::${ISA}::" OR NOT line MATCHES "^[0-9a-f]* [TWi] ")
      continue()
    endif()
    string(APPEND bad "  ${obj}: ${line}\n")
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "symbols outside namespace blockprop::${ISA}:\n${bad}")
endif()
message(STATUS "${ISA}: every external symbol is in namespace blockprop::${ISA}")
