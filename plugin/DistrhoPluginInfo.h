// Segue Link: DPF's description of the plugin (one source, built as CLAP, VST3 and LV2).
// SPDX-License-Identifier: MIT
#ifndef DISTRHO_PLUGIN_INFO_H_INCLUDED
#define DISTRHO_PLUGIN_INFO_H_INCLUDED

#define DISTRHO_PLUGIN_BRAND   "Segue"
#define DISTRHO_PLUGIN_NAME    "Segue Link"
#define DISTRHO_PLUGIN_URI     "urn:segue:link"
#define DISTRHO_PLUGIN_CLAP_ID "org.segue.link"

#define DISTRHO_PLUGIN_HAS_UI          0
#define DISTRHO_PLUGIN_IS_RT_SAFE      1
#define DISTRHO_PLUGIN_IS_SYNTH        0
#define DISTRHO_PLUGIN_NUM_INPUTS      2
#define DISTRHO_PLUGIN_NUM_OUTPUTS     2
#define DISTRHO_PLUGIN_WANT_TIMEPOS    1
// MIDI in for CLAP and LV2. DPF 1.6's VST3 wrapper turns MIDI input into 2080 hidden "MIDI CC" parameters, which
// make hosts slow to load the plugin (pedalboard: ~35 s) and crowd automation lists: the VST3 build (made with
// SEGUE_LINK_NO_MIDI, plugin/Makefile) captures audio only.
#ifdef SEGUE_LINK_NO_MIDI
#define DISTRHO_PLUGIN_WANT_MIDI_INPUT 0
#else
#define DISTRHO_PLUGIN_WANT_MIDI_INPUT 1
#endif
#define DISTRHO_PLUGIN_WANT_STATE      1
#define DISTRHO_PLUGIN_WANT_FULL_STATE 1
#define DISTRHO_PLUGIN_WANT_LATENCY    0

#define DISTRHO_PLUGIN_LV2_CATEGORY    "lv2:UtilityPlugin"
#define DISTRHO_PLUGIN_VST3_CATEGORIES "Fx|Tools"
#define DISTRHO_PLUGIN_CLAP_FEATURES   "audio-effect", "utility", "stereo"

#endif
